#include "granite/tokenizer/bpe_tokenizer.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <filesystem>
#include <functional>

#include "granite/core/check.h"
#include "granite/tokenizer/unicode.h"

namespace granite {

namespace {

constexpr size_t kCacheLimit = size_t(1) << 16;  // entries per thread before the cache starts over

// Piece -> ids cache, one per thread: no lock on the hot path (the same identifiers recur constantly in code).
// Entries belong to one tokenizer, named by a serial number (never reused, unlike an address); a thread that
// switches tokenizers starts its cache afresh. Open addressing over flat arrays: a lookup hashes the piece once and
// allocates nothing; keys and ids live in two arenas addressed by offset; when full, the cache starts over.
class PieceCache {
 public:
  // The cached ids of `piece` appended to `out`; false on a miss.
  bool lookup(std::string_view piece, uint64_t hash, std::vector<TokenId>& out) const {
    if (slots_.empty()) return false;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key_length == kEmpty) return false;
      if (s.hash == hash && s.key_length == piece.size() &&
          std::memcmp(keys_.data() + s.key_offset, piece.data(), piece.size()) == 0) {
        out.insert(out.end(), ids_.begin() + s.ids_offset, ids_.begin() + s.ids_offset + s.ids_count);
        return true;
      }
    }
  }
  // After a miss for the same piece and hash.
  void insert(std::string_view piece, uint64_t hash, const std::vector<TokenId>& ids) {
    if (slots_.empty() || size_ >= kCacheLimit || keys_.size() + piece.size() > kArenaLimit) reset();
    size_t i = hash & mask_;
    while (slots_[i].key_length != kEmpty) i = (i + 1) & mask_;
    slots_[i] = {hash, uint32_t(keys_.size()), uint32_t(piece.size()), uint32_t(ids_.size()), uint32_t(ids.size())};
    keys_.append(piece);
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++size_;
  }
  void reset_for(uint64_t owner) {
    if (owner_ == owner) return;
    reset();
    owner_ = owner;
  }

 private:
  static constexpr uint32_t kEmpty = ~uint32_t(0);
  static constexpr size_t kArenaLimit = size_t(1) << 30;  // offsets stay far inside uint32
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_offset = 0, key_length = kEmpty, ids_offset = 0, ids_count = 0;
  };
  void reset() {
    slots_.assign(2 * kCacheLimit, Slot{});  // load factor <= 1/2
    mask_ = slots_.size() - 1;
    keys_.clear();
    ids_.clear();
    size_ = 0;
  }

  uint64_t owner_ = 0;
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
  std::string keys_;
  std::vector<TokenId> ids_;
};

PieceCache& thread_piece_cache(uint64_t owner) {
  thread_local PieceCache cache;
  cache.reset_for(owner);
  return cache;
}

uint64_t next_cache_owner() {
  static std::atomic<uint64_t> serial{0};
  return ++serial;
}

// "eos_token": "<|endoftext|>" or {"content": "<|endoftext|>", ...} in tokenizer_config.json.
std::optional<std::string> config_token(const Json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const Json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

BpeTokenizer::BpeTokenizer(const Json& j, const std::string& where, const Json& config)
    : cache_owner_(next_cache_owner()) {
  JsonReader r(j, where);
  r.ignore("version");
  r.ignore("padding");  // batch padding: we return unpadded id lists
  if (const Json* t = r.raw("truncation"); t && !t->is_null()) {
    GRANITE_FAIL(where, ": 'truncation' is set (", json_preview(*t), "); truncation is not applied here");
  }
  // normalizer: none or NFC (Qwen-3)
  if (const Json* n = r.raw("normalizer"); n && !n->is_null()) {
    const std::string type = n->is_object() ? n->value("type", "") : "";
    GRANITE_CHECK(type == "NFC", where, ": normalizer ", json_preview(*n), " is not supported (null or NFC)");
    nfc_ = true;
  }
  const Json* model = r.raw("model");
  GRANITE_CHECK(model != nullptr, where, ": missing required key 'model'");
  load_model(*model, where);

  const Json* pre = r.raw("pre_tokenizer");
  pre_tokenizer_ = std::make_unique<PreTokenizer>(pre ? *pre : Json(nullptr), where);

  // The decoder must be ByteLevel (or absent): decoding inverts the byte map.
  if (const Json* d = r.raw("decoder"); d && !d->is_null()) {
    GRANITE_CHECK(d->is_object() && d->value("type", "") == "ByteLevel", where, ": decoder ", json_preview(*d),
                  " is not supported (ByteLevel)");
  }
  // post_processor only adds special tokens when HF encodes with add_special_tokens=True; we never do (no BOS for
  // Granite). ByteLevel's trim_offsets touches offsets only.
  if (const Json* p = r.raw("post_processor"); p && !p->is_null()) {
    const std::string type = p->is_object() ? p->value("type", "") : "";
    GRANITE_CHECK(type == "ByteLevel" || type == "TemplateProcessing", where, ": post_processor type \"", type,
                  "\" is not supported");
  }

  // Added tokens: ids may extend past the BPE vocabulary.
  if (const Json* added = r.raw("added_tokens"); added && !added->is_null()) {
    GRANITE_CHECK(added->is_array(), where, ": 'added_tokens' must be a list");
    for (const auto& t : *added) {
      JsonReader a(t, where + ": added_tokens entry");
      const TokenId id = TokenId(a.required<int64_t>("id"));
      const std::string content = a.required<std::string>("content");
      const bool special = a.optional<bool>("special", false);
      for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
        GRANITE_CHECK(!a.optional<bool>(flag, false), where, ": added token \"", content, "\" sets ", flag,
                      ", which is not supported");
      }
      a.ignore("normalized");  // matched on the raw text either way (see added_tokens.h)
      a.finish();
      GRANITE_CHECK(id >= 0, where, ": added token \"", content, "\" has negative id ", id);
      if (size_t(id) >= id_to_token_.size()) {
        id_to_token_.resize(size_t(id) + 1);
        id_to_bytes_.resize(size_t(id) + 1);
        is_special_.resize(size_t(id) + 1, false);
      }
      auto it = vocab_.find(content);
      GRANITE_CHECK(it == vocab_.end() || it->second == id, where, ": added token \"", content, "\" has id ", id,
                    " but the vocabulary gives it ", it == vocab_.end() ? -1 : it->second);
      vocab_[content] = id;
      id_to_token_[size_t(id)] = content;
      id_to_bytes_[size_t(id)] = byte_level_.decode(content);
      is_special_[size_t(id)] = special;
      added_.add(content, id);
    }
  }
  r.finish();
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    GRANITE_CHECK(!id_to_token_[id].empty(), where, ": token id ", id, " has no vocabulary entry (ids must be dense)");
  }

  // Roles, by content (tokenizer_config.json first, then the StarCoder/GPT-2 convention <|endoftext|>).
  auto find = [&](const std::string& content) -> std::optional<TokenId> { return token_to_id(content); };
  auto role = [&](const char* key) -> std::optional<TokenId> {
    auto name = config_token(config, key);
    return name ? find(*name) : find("<|endoftext|>");
  };
  special_.bos = role("bos_token");
  special_.eos = role("eos_token");
  special_.pad = role("pad_token");
  special_.unk = config_token(config, "unk_token") ? find(*config_token(config, "unk_token")) : std::nullopt;
  special_.fim_prefix = find("<fim_prefix>");
  special_.fim_middle = find("<fim_middle>");
  special_.fim_suffix = find("<fim_suffix>");
  special_.fim_pad = find("<fim_pad>");
}

void BpeTokenizer::load_model(const Json& model, const std::string& where) {
  const std::string at = where + ": model";
  JsonReader m(model, at);
  const std::string type = m.required<std::string>("type");
  GRANITE_CHECK(type == "BPE", at, ": type \"", type, "\" is not supported (BPE)");
  if (const Json* d = m.raw("dropout"); d && !d->is_null()) {
    GRANITE_CHECK(d->is_number() && d->get<double>() == 0.0, at, ": dropout ", json_preview(*d), " is not supported");
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = m.raw(affix);
    GRANITE_CHECK(!v || v->is_null() || (v->is_string() && v->get<std::string>().empty()), at, ": ", affix, " ",
                  json_preview(*v), " is not supported");
  }
  GRANITE_CHECK(!m.optional<bool>("byte_fallback", false), at,
                ": byte_fallback true (sentencepiece-style BPE) is not supported; use the .model file instead");
  m.ignore("fuse_unk");  // only matters when unknown pieces occur, which byte-level vocabularies rule out
  m.ignore("unk_token");
  ignore_merges_ = m.optional<bool>("ignore_merges", false);

  const Json* vocab = m.raw("vocab");
  GRANITE_CHECK(vocab && vocab->is_object(), at, ": 'vocab' must be an object {token: id}");
  size_t size = 0;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    GRANITE_CHECK(it->is_number_integer() && it->get<int64_t>() >= 0, at, ": vocab['", it.key(),
                  "'] must be a non-negative id, got ", json_preview(*it));
    size = std::max(size, size_t(it->get<int64_t>()) + 1);
  }
  id_to_token_.assign(size, std::string());
  id_to_bytes_.assign(size, std::string());
  is_special_.assign(size, false);
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    const TokenId id = TokenId(it->get<int64_t>());
    GRANITE_CHECK(id_to_token_[size_t(id)].empty(), at, ": id ", id, " is given to both '", id_to_token_[size_t(id)],
                  "' and '", it.key(), "'");
    check_utf8(it.key(), at + ": vocab key");
    vocab_[it.key()] = id;
    id_to_token_[size_t(id)] = it.key();
    id_to_bytes_[size_t(id)] = byte_level_.decode(it.key());
  }
  // Single-byte symbols. A vocabulary may lack some: StarCoder has none for 0xC0, 0xC1, 0xF1 and 0xF5..0xFF, and of
  // those only 0xF1 occurs in valid UTF-8 (lead byte of U+40000..U+7FFFF, unassigned planes 4-7). Missing ones stay
  // -1 and such bytes are dropped from the piece, which is what HF's BPE does with a symbol missing from the
  // vocabulary when there is no unk_token (the parity corpus has such a text).
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(byte_level_.encode_byte(uint8_t(b)));
    byte_ids_[size_t(b)] = it == vocab_.end() ? -1 : it->second;
  }

  const Json* merges = m.raw("merges");
  GRANITE_CHECK(merges && merges->is_array(), at, ": 'merges' must be a list");
  int32_t rank = 0;
  for (const auto& entry : *merges) {
    std::string left, right;
    if (entry.is_string()) {  // "a b"
      const std::string s = entry.get<std::string>();
      const size_t space = s.find(' ');
      GRANITE_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, at, ": merge ", rank,
                    " \"", s, "\" must be two tokens separated by one space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else {  // ["a", "b"]
      GRANITE_CHECK(entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string(), at,
                    ": merge ", rank, " must be \"a b\" or [\"a\", \"b\"], got ", json_preview(entry));
      left = entry[0].get<std::string>();
      right = entry[1].get<std::string>();
    }
    auto a = vocab_.find(left), b = vocab_.find(right), ab = vocab_.find(left + right);
    GRANITE_CHECK(a != vocab_.end() && b != vocab_.end() && ab != vocab_.end(), at, ": merge ", rank, " ('", left,
                  "', '", right, "') uses a token missing from the vocabulary");
    merges_.insert(a->second, b->second, rank, ab->second);  // first rank wins
    ++rank;
  }
  m.finish();
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_file(const std::string& path) {
  Json config = nullptr;
  const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) config = read_json_file(config_path.string());
  return std::make_unique<BpeTokenizer>(read_json_file(path), path, config);
}

void BpeTokenizer::encode_piece(std::string_view bytes, std::vector<TokenId>& out) const {
  if (bytes.size() == 1) {
    const TokenId id = byte_ids_[static_cast<unsigned char>(bytes[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  PieceCache& cache = thread_piece_cache(cache_owner_);
  const uint64_t hash = XXH3_64bits(bytes.data(), bytes.size());
  if (cache.lookup(bytes, hash, out)) return;
  thread_local std::vector<TokenId> symbols;
  symbols.clear();
  bool whole = false;
  if (ignore_merges_) {  // HF BPE ignore_merges: a piece that is itself a vocabulary entry is not split
    auto it = vocab_.find(byte_level_.encode(bytes));
    if (it != vocab_.end()) {
      symbols.push_back(it->second);
      whole = true;
    }
  }
  if (!whole) {
    for (unsigned char b : bytes)
      if (byte_ids_[b] >= 0) symbols.push_back(byte_ids_[b]);  // see byte_ids_: unknown bytes are dropped
    merge_symbols(symbols, merges_);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  cache.insert(bytes, hash, symbols);
}

std::vector<TokenId> BpeTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  check_utf8(text, "encode");
  std::vector<TokenId> ids;
  std::vector<AddedTokenMatcher::Segment> segments;
  if (options.parse_added_tokens && !added_.empty()) {
    added_.split(text, segments);
  } else {
    segments.push_back({text, -1});
  }
  std::vector<std::string_view> pieces;
  std::string normalized;
  for (const auto& seg : segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string_view plain = seg.text;
    if (nfc_) {
      normalized = nfc(plain);
      plain = normalized;
    }
    pre_tokenizer_->split(plain, pieces);
    for (auto piece : pieces) encode_piece(piece, ids);
  }
  return ids;
}

void BpeTokenizer::check_id(TokenId id) const {
  GRANITE_CHECK(id >= 0 && int64_t(id) < vocab_size(), "token id ", id, " is outside the vocabulary [0, ",
                vocab_size(), ")");
}

std::string BpeTokenizer::decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (TokenId id : ids) {
    check_id(id);
    if (skip_special_tokens && is_special_[size_t(id)]) continue;
    bytes += id_to_bytes_[size_t(id)];
  }
  return utf8_lossy(bytes);
}

std::string BpeTokenizer::decode_bytes(const std::vector<TokenId>& ids) const {
  std::string bytes;
  for (TokenId id : ids) {
    check_id(id);
    bytes += id_to_bytes_[size_t(id)];
  }
  return bytes;
}

bool BpeTokenizer::is_special(TokenId id) const {
  check_id(id);
  return is_special_[size_t(id)];
}

std::optional<TokenId> BpeTokenizer::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::id_to_token(TokenId id) const {
  check_id(id);
  return id_to_token_[size_t(id)];
}

}  // namespace granite
