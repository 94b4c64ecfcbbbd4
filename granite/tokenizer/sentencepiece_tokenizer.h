#pragma once
// SentencePiece backend: a sentencepiece .model file (BPE or unigram, as spm_train writes it) behind the Tokenizer
// interface. Normalization (NMT NFKC, whitespace collapsing) and decoding are sentencepiece's own, so ids equal those
// of `spm_encode --output_format=id` and of the Python sentencepiece package for the same model.
//
// sentencepiece stays private: this header only forward-declares its processor, so code that includes it needs no
// sentencepiece headers, and libsentencepiece is not linked at all but opened at run time, isolated (see the .cpp:
// Debian's libsentencepiece.so.0 carries its own protobuf 3.14, whose exported symbols crash LibTorch's protobuf).
#include <memory>
#include <string>

#include "granite/tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace granite {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Loads the model; granite::Error naming the path and sentencepiece's message when it cannot.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer() override;

  // `options.parse_added_tokens` has no effect here (see the .cpp).
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const override;
  // skip_special_tokens drops control pieces (<s>, </s>, ...) and <unk>; without it sentencepiece decodes control
  // pieces to nothing and <unk> to " ⁇ ".
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false) const override;

  bool is_special(TokenId id) const override;  // control pieces and <unk>
  int64_t vocab_size() const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;

  const std::string& path() const { return path_; }

 private:
  void check_id(TokenId id) const;

  struct Deleter {
    void operator()(sentencepiece::SentencePieceProcessor* p) const;
  };
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor, Deleter> sp_;
};

}  // namespace granite
