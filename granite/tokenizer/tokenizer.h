#pragma once
// One tokenizer interface, two backends:
//   * BpeTokenizer: byte-level BPE from a Hugging Face tokenizer.json (StarCoder, the Granite Code tokenizer; GPT-2;
//     Llama-3; Qwen-3), token-for-token identical to HF tokenizers;
//   * SentencePieceTokenizer: sentencepiece .model files.
// Ids are int32 (vocabularies are < 2^31; half the memory of int64 in data preparation).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace granite {

using TokenId = int32_t;

// Ids of the tokens the rest of the toolkit needs by role, looked up by their content in the vocabulary
// (never hard-coded). Absent ones stay empty.
struct SpecialTokens {
  std::optional<TokenId> bos, eos, pad, unk;
  std::optional<TokenId> fim_prefix, fim_middle, fim_suffix, fim_pad;  // StarCoder FIM tokens
};

struct EncodeOptions {
  // true (HF's default for encode(text, add_special_tokens=False)): added tokens written in the text, such as
  // "<fim_prefix>", become their ids. false: the whole text is encoded as plain text.
  bool parse_added_tokens = true;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text must be valid UTF-8 (else granite::Error naming the byte offset). No BOS/EOS is added.
  virtual std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const = 0;
  // Invalid ids raise; byte sequences that are not valid UTF-8 are replaced by U+FFFD, as HF does.
  virtual std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false) const = 0;

  // The bytes the ids stand for, without the U+FFFD repair decode() applies: a slice of a document may begin or end
  // inside a multi-byte character. The default is decode() (for backends whose output is always text).
  virtual std::string decode_bytes(const std::vector<TokenId>& ids) const { return decode(ids); }
  // Special tokens (control tokens, <|endoftext|>, <fim_*>): what decode(skip_special_tokens) drops.
  virtual bool is_special(TokenId id) const = 0;

  virtual int64_t vocab_size() const = 0;  // ids are in [0, vocab_size)
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(TokenId id) const = 0;  // the vocabulary string (raises on a bad id)
  const SpecialTokens& special_tokens() const { return special_; }

  // Encodes many texts on `threads` threads (0 = hardware concurrency); the output order is the input order.
  std::vector<std::vector<TokenId>> encode_batch(const std::vector<std::string>& texts, int threads = 0,
                                                 const EncodeOptions& options = {}) const;

 protected:
  SpecialTokens special_;
};

// tokenizer.json -> BpeTokenizer; *.model -> SentencePieceTokenizer; a directory -> its tokenizer.json (or
// tokenizer.model). tokenizer_config.json beside it, when present, names bos/eos/pad.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace granite
