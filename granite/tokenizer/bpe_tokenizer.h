#pragma once
// Byte-level BPE from a Hugging Face tokenizer.json, identical to HF tokenizers for the files of that family:
// StarCoder (Granite Code: Digits + GPT-2 ByteLevel), GPT-2, Llama-3 (Split + ignore_merges), Qwen-3 (NFC + Split).
// Pipeline (HF order): added tokens found in the raw text -> normalizer (none | NFC) -> pre-tokenizer pieces ->
// each piece's bytes through BPE merges (rank order, leftmost first) -> ids. Decoding inverts the byte map.
// Anything in the file this implementation does not honour (other models, normalizers, byte_fallback, dropout,
// truncation, ...) is an error naming the key, never silently ignored.
#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "granite/core/json.h"
#include "granite/tokenizer/added_tokens.h"
#include "granite/tokenizer/bpe_merge.h"
#include "granite/tokenizer/byte_level.h"
#include "granite/tokenizer/pre_tokenizer.h"
#include "granite/tokenizer/tokenizer.h"

namespace granite {

class BpeTokenizer : public Tokenizer {
 public:
  // `where` names the source in errors; `config` is tokenizer_config.json's content or null.
  BpeTokenizer(const Json& tokenizer_json, const std::string& where, const Json& config = nullptr);
  static std::unique_ptr<BpeTokenizer> from_file(const std::string& path);

  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false) const override;
  std::string decode_bytes(const std::vector<TokenId>& ids) const override;
  bool is_special(TokenId id) const override;
  int64_t vocab_size() const override { return int64_t(id_to_token_.size()); }
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;

 private:
  void load_model(const Json& model, const std::string& where);
  void encode_piece(std::string_view bytes, std::vector<TokenId>& out) const;  // one pre-token through BPE
  void check_id(TokenId id) const;

  std::unordered_map<std::string, TokenId> vocab_;      // vocabulary string (byte-mapped) -> id
  std::vector<std::string> id_to_token_;                // id -> vocabulary string or added-token content
  std::vector<std::string> id_to_bytes_;                // id -> decoded bytes
  std::vector<bool> is_special_;                        // added tokens marked "special"
  std::array<TokenId, 256> byte_ids_{};                 // id of each single byte's symbol
  MergeTable merges_;                                   // (left, right) -> (rank, merged id)
  bool ignore_merges_ = false;                          // Llama-3: a piece that is a vocabulary entry is kept whole
  bool nfc_ = false;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  AddedTokenMatcher added_;
  ByteLevel byte_level_;

  // Identifies this tokenizer's entries in the per-thread piece cache (bpe_tokenizer.cpp: thread_piece_cache).
  uint64_t cache_owner_;
};

}  // namespace granite
