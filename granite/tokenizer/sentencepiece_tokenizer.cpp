#include "granite/tokenizer/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>

#include <new>

#include "granite/core/check.h"
#include "granite/tokenizer/unicode.h"

// Why libsentencepiece is opened with dlopen instead of linked.
//
// Debian's libsentencepiece.so.0 (0.1.97) contains its own copy of protobuf-lite 3.14 and exports all of its symbols;
// LibTorch loads the system libprotobuf.so.32 (3.21). Linked normally, both sit in the process's global symbol scope
// and whichever comes first wins for everyone: with libsentencepiece first, libprotobuf's static initializers run
// sentencepiece's 3.14 code and segfault before main(); with libprotobuf first, sentencepiece's model parser fails
// protobuf's version check ("compiled against version 3.14.0 ... installed version (3.21.12)").
//
// So the library is opened with RTLD_LOCAL (its symbols stay out of the global scope: libprotobuf keeps its own) and
// RTLD_DEEPBIND (its own references resolve inside it first: it keeps its protobuf). The processor is then used only
// through its virtual member functions, which are reached through its vtable and need no symbol; the few non-virtual
// functions (the constructor, util::Status's destructor, code() and error_message()) come from dlsym. No sentencepiece
// symbol is referenced at link time, so a link of an executable fails if one ever is (that is the check).
// RTLD_DEEPBIND is glibc's; sanitizer runtimes refuse it.

namespace granite {

namespace {

namespace spm = sentencepiece;

// The runtime library, where CMake found it (a fallback when the soname is not on the loader's search path).
#ifndef GRANITE_SENTENCEPIECE_LIBDIR
#define GRANITE_SENTENCEPIECE_LIBDIR ""
#endif

class Runtime {
 public:
  // Opens the library once per process; throws (each time it is asked) when it cannot.
  static const Runtime& get() {
    static const Runtime runtime;
    return runtime;
  }

  // Itanium C++ ABI names of the non-virtual functions used (sentencepiece 0.1.x).
  void (*construct_processor)(void* self) = nullptr;          // SentencePieceProcessor::SentencePieceProcessor()
  void (*destroy_status)(void* self) = nullptr;               // util::Status::~Status()
  int (*status_code)(const void* self) = nullptr;             // util::Status::code()
  const char* (*status_message)(const void* self) = nullptr;  // util::Status::error_message()

 private:
  Runtime() {
#if defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI == 0
    // Strings cross into the library through its vtable, where no linker checks the std::string ABI: refuse rather
    // than corrupt memory.
    GRANITE_FAIL("sentencepiece models need granite built with the C++11 std::string ABI, as Debian's "
                 "libsentencepiece is; this build uses _GLIBCXX_USE_CXX11_ABI=0 (from its LibTorch)");
#endif
    const std::string fallback_dir = GRANITE_SENTENCEPIECE_LIBDIR;
    std::string errors;
    for (const std::string& name : {std::string("libsentencepiece.so.0"), fallback_dir + "/libsentencepiece.so.0",
                                    fallback_dir + "/libsentencepiece.so"}) {
      if (name.front() == '/' && fallback_dir.empty()) continue;
      handle_ = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle_ != nullptr) break;
      errors += std::string("\n  ") + dlerror();
    }
    GRANITE_CHECK(handle_ != nullptr,
                  "cannot open libsentencepiece.so.0, the sentencepiece runtime library (Debian package "
                  "libsentencepiece0):",
                  errors);
    construct_processor = reinterpret_cast<void (*)(void*)>(symbol("_ZN13sentencepiece22SentencePieceProcessorC1Ev"));
    destroy_status = reinterpret_cast<void (*)(void*)>(symbol("_ZN13sentencepiece4util6StatusD1Ev"));
    status_code = reinterpret_cast<int (*)(const void*)>(symbol("_ZNK13sentencepiece4util6Status4codeEv"));
    status_message =
        reinterpret_cast<const char* (*)(const void*)>(symbol("_ZNK13sentencepiece4util6Status13error_messageEv"));
  }

  void* symbol(const char* name) const {
    void* p = dlsym(handle_, name);
    GRANITE_CHECK(p != nullptr, "libsentencepiece.so.0 lacks ", name,
                  " (not the sentencepiece 0.1.x this was built for?): ", dlerror());
    return p;
  }

  void* handle_ = nullptr;  // never closed: protobuf's atexit handlers live in it
};

// A util::Status returned by a sentencepiece call, built in raw storage: C++17's guaranteed copy elision constructs it
// there directly, and the compiler never emits a call to ~Status (the runtime's pointer destroys it).
class Status {
 public:
  template <typename Call>
  explicit Status(Call&& call) {
    new (storage_) spm::util::Status(call());
  }
  ~Status() { Runtime::get().destroy_status(storage_); }
  Status(const Status&) = delete;
  Status& operator=(const Status&) = delete;

  bool ok() const { return get().ok(); }  // inline in sentencepiece's header
  bool not_found() const {
    return Runtime::get().status_code(storage_) == static_cast<int>(spm::util::StatusCode::kNotFound);
  }
  std::string message() const {
    const char* m = Runtime::get().status_message(storage_);
    return m != nullptr ? m : "(no message)";
  }

 private:
  const spm::util::Status& get() const { return *std::launder(reinterpret_cast<const spm::util::Status*>(storage_)); }
  alignas(spm::util::Status) unsigned char storage_[sizeof(spm::util::Status)];
};

}  // namespace

void SentencePieceTokenizer::Deleter::operator()(sentencepiece::SentencePieceProcessor* p) const {
  p->~SentencePieceProcessor();  // virtual: through the vtable, into the library
  ::operator delete(p);
}

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path) : path_(model_path) {
  const Runtime& runtime = Runtime::get();
  void* memory = ::operator new(sizeof(spm::SentencePieceProcessor));
  try {
    runtime.construct_processor(memory);
  } catch (...) {
    ::operator delete(memory);
    throw;
  }
  sp_.reset(static_cast<spm::SentencePieceProcessor*>(memory));

  const Status status([&] { return sp_->Load(model_path); });
  if (!status.ok()) {
    // sentencepiece's message for a missing file is clear; for anything else (a protobuf parse error when the file
    // is not a model) it is not, so say it in plain words first.
    GRANITE_FAIL("cannot load sentencepiece model ", model_path, ": ",
                 status.not_found()
                     ? status.message()
                     : "not a valid sentencepiece model file (sentencepiece says: " + status.message() + ")");
  }
  GRANITE_CHECK(sp_->GetPieceSize() > 0, "sentencepiece model ", model_path, " has an empty vocabulary");

  // Roles sentencepiece knows itself (-1 = disabled at training time).
  auto role = [](int id) { return id >= 0 ? std::optional<TokenId>(id) : std::nullopt; };
  special_.bos = role(sp_->bos_id());
  special_.eos = role(sp_->eos_id());
  special_.pad = role(sp_->pad_id());
  special_.unk = role(sp_->unk_id());
  // FIM tokens are ordinary (user-defined) pieces, found by their text.
  special_.fim_prefix = token_to_id("<fim_prefix>");
  special_.fim_middle = token_to_id("<fim_middle>");
  special_.fim_suffix = token_to_id("<fim_suffix>");
  special_.fim_pad = token_to_id("<fim_pad>");
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<TokenId> SentencePieceTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  // EncodeOptions::parse_added_tokens changes nothing here: sentencepiece has no switch for it. Its user-defined
  // symbols (e.g. --user_defined_symbols=<fim_prefix>) are always matched in the text, and its control symbols
  // (<s>, </s>) never are, whichever way the option is set.
  (void)options;
  check_utf8(text, "sentencepiece encode: text");
  // Encode (not EncodeAsIds, which swallows errors) so a failure is reported. Encoding does not modify the processor:
  // encode_batch calls this from several threads at once.
  std::vector<int> ids;
  const Status status([&] { return sp_->Encode(text, &ids); });
  GRANITE_CHECK(status.ok(), "sentencepiece encode failed (model ", path_, "): ", status.message());
  return std::vector<TokenId>(ids.begin(), ids.end());
}

bool SentencePieceTokenizer::is_special(TokenId id) const {
  check_id(id);
  return sp_->IsControl(id) || sp_->IsUnknown(id);
}

std::string SentencePieceTokenizer::decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  for (TokenId id : ids) {
    check_id(id);
    if (skip_special_tokens && (sp_->IsControl(id) || sp_->IsUnknown(id))) continue;
    kept.push_back(id);
  }
  // Byte pieces (<0xE6>, from --byte_fallback models) that do not form valid UTF-8 come out as U+FFFD.
  std::string text;
  const Status status([&] { return sp_->Decode(kept, &text); });
  GRANITE_CHECK(status.ok(), "sentencepiece decode failed (model ", path_, "): ", status.message());
  return text;
}

int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::optional<TokenId> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = sp_->PieceToId(token);
  // PieceToId answers unk_id for pieces it does not know; only the unk piece itself really is that id.
  if (id < 0 || (id == sp_->unk_id() && sp_->IdToPiece(id) != token)) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::id_to_token(TokenId id) const {
  check_id(id);
  return sp_->IdToPiece(id);
}

void SentencePieceTokenizer::check_id(TokenId id) const {
  const int n = sp_->GetPieceSize();
  GRANITE_CHECK(id >= 0 && id < n, "token id ", id, " is out of range: vocab size is ", n, " (ids 0..", n - 1,
                ") in ", path_);
}

}  // namespace granite
