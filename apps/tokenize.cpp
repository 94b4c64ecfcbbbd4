// granite-tokenize: JSON lines through a tokenizer (tokenizer.json, a sentencepiece .model, or a directory with one).
//   granite-tokenize --tokenizer FILE [--threads N] [--plain-text]  < texts.jsonl > ids.jsonl
//   granite-tokenize --tokenizer FILE --decode                      < ids.jsonl   > texts.jsonl
// Encoding reads {"text": "..."} lines and writes {"ids": [...]} lines; --decode reads {"ids": [...]} and writes
// {"text": "..."}. Output line k answers input line k; other keys on an input line are ignored. No BOS/EOS is added.
// Lines are encoded 4096 at a time on N threads. Any bad line stops the run (exit 1) with a message naming its line
// number; the lines before it have been written.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "cli_basic.h"
#include "granite/core/json.h"
#include "granite/tokenizer/tokenizer.h"

namespace {

constexpr size_t kBatchLines = 4096;

std::string where(int64_t line) { return "stdin line " + std::to_string(line); }

// Parses one input line into a JSON object; errors name the line.
granite::Json parse_object(const std::string& text, int64_t line) {
  GRANITE_CHECK(text.find_first_not_of(" \t\r") != std::string::npos, where(line),
                ": empty line (every line must be a JSON object)");
  // nlohmann rejects ill-formed UTF-8 (and lone surrogate escapes) in strings, so parsed text is valid UTF-8.
  granite::Json j = granite::parse_json(text, where(line));
  GRANITE_CHECK(j.is_object(), where(line), ": expected a JSON object, got ", granite::json_preview(j));
  return j;
}

std::string text_of(const std::string& raw, int64_t line) {
  const granite::Json j = parse_object(raw, line);
  auto it = j.find("text");
  GRANITE_CHECK(it != j.end(), where(line), ": no \"text\" key (expected {\"text\": \"...\"})");
  GRANITE_CHECK(it->is_string(), where(line), ": \"text\" must be a string, got ", granite::json_preview(*it));
  return it->get<std::string>();
}

std::vector<granite::TokenId> ids_of(const std::string& raw, int64_t line, int64_t vocab_size) {
  const granite::Json j = parse_object(raw, line);
  auto it = j.find("ids");
  GRANITE_CHECK(it != j.end(), where(line), ": no \"ids\" key (expected {\"ids\": [...]})");
  GRANITE_CHECK(it->is_array(), where(line), ": \"ids\" must be an array of token ids, got ",
                granite::json_preview(*it));
  std::vector<granite::TokenId> ids;
  ids.reserve(it->size());
  for (size_t k = 0; k < it->size(); ++k) {
    const granite::Json& v = (*it)[k];
    GRANITE_CHECK(v.is_number_integer(), where(line), ": ids[", k, "] = ", granite::json_preview(v),
                  " is not an integer token id");
    // Unsigned values above INT64_MAX would wrap in get<int64_t>: clamp them to "too large".
    const int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
                           ? std::numeric_limits<int64_t>::max()
                           : v.get<int64_t>();
    GRANITE_CHECK(id >= 0 && id < vocab_size, where(line), ": ids[", k, "] = ", granite::json_preview(v),
                  " is out of range: vocab size is ", vocab_size, " (ids 0..", vocab_size - 1, ")");
    ids.push_back(granite::TokenId(id));
  }
  return ids;
}

// Reads up to kBatchLines lines. Returns false at end of input with nothing read.
bool read_batch(std::istream& in, std::vector<std::string>& lines) {
  lines.clear();
  std::string line;
  while (lines.size() < kBatchLines && std::getline(in, line)) lines.push_back(std::move(line));
  GRANITE_CHECK(!in.bad(), "error reading stdin");
  return !lines.empty();
}

void write(std::ostream& out, const std::string& text) {
  out << text;
  GRANITE_CHECK(out.good(), "error writing stdout");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Encode {\"text\": ...} JSON lines to {\"ids\": [...]}, or decode them back (--decode)."};
  std::string tokenizer_path;
  bool decode = false, plain_text = false;
  int threads = 0;
  app.add_option("--tokenizer", tokenizer_path,
                 "tokenizer.json, a sentencepiece .model file, or a directory holding one")
      ->required();
  app.add_flag("--decode", decode, "read {\"ids\": [...]} lines, write {\"text\": \"...\"} lines");
  app.add_option("--threads", threads, "encoding threads (0 = hardware concurrency)")->capture_default_str();
  app.add_flag("--plain-text", plain_text,
               "encode added tokens written in the text (e.g. \"<fim_prefix>\") as plain text, not as their ids "
               "(no effect for sentencepiece models)");
  CLI11_PARSE(app, argc, argv);

  return granite::cli::guarded_main("granite-tokenize", [&] {
    GRANITE_CHECK(threads >= 0, "--threads must be >= 0 (0 = hardware concurrency), got ", threads);
    GRANITE_CHECK(!(decode && plain_text), "--plain-text applies to encoding; it cannot be combined with --decode");
    std::ios::sync_with_stdio(false);
    const auto tokenizer = granite::load_tokenizer(tokenizer_path);
    granite::EncodeOptions options;
    options.parse_added_tokens = !plain_text;

    std::vector<std::string> lines;
    int64_t first_line = 1;  // input line number of lines[0]
    while (read_batch(std::cin, lines)) {
      std::string out;
      // A bad line ends the run, but only after the good lines before it are written.
      std::optional<granite::Error> failure;
      if (decode) {
        for (size_t i = 0; i < lines.size() && !failure; ++i) {
          const int64_t line = first_line + int64_t(i);
          try {
            const auto ids = ids_of(lines[i], line, tokenizer->vocab_size());  // its errors name the line
            std::string text;
            try {
              text = tokenizer->decode(ids);
            } catch (const granite::Error& e) {
              throw granite::Error(where(line) + ": " + e.what());
            }
            // decode promises valid UTF-8 (U+FFFD for broken byte sequences); `replace` is a belt and braces.
            out += granite::Json{{"text", text}}.dump(-1, ' ', false, granite::Json::error_handler_t::replace);
            out += '\n';
          } catch (const granite::Error& e) {
            failure.emplace(e);
          }
        }
      } else {
        std::vector<std::string> texts;
        texts.reserve(lines.size());
        for (size_t i = 0; i < lines.size() && !failure; ++i) {
          try {
            texts.push_back(text_of(lines[i], first_line + int64_t(i)));
          } catch (const granite::Error& e) {
            failure.emplace(e);
          }
        }
        std::vector<std::vector<granite::TokenId>> ids;
        try {
          ids = tokenizer->encode_batch(texts, threads, options);
        } catch (const granite::Error&) {
          // Redo the batch one text at a time, so the message names the failing line and the lines before it are
          // written. (That failure comes before any JSON one: `texts` holds only the lines before that.)
          ids.clear();
          std::optional<granite::Error> encode_failure;
          for (size_t i = 0; i < texts.size() && !encode_failure; ++i) {
            try {
              ids.push_back(tokenizer->encode(texts[i], options));
            } catch (const granite::Error& e) {
              encode_failure.emplace(where(first_line + int64_t(i)) + ": " + e.what());
            }
          }
          if (!encode_failure) throw;  // the batch failed but no single text does: report the batch's error
          failure = encode_failure;
        }
        for (const auto& row : ids) {
          out += granite::Json{{"ids", row}}.dump();
          out += '\n';
        }
      }
      write(std::cout, out);
      if (failure) {
        std::cout.flush();
        throw *failure;
      }
      first_line += int64_t(lines.size());
    }
    std::cout.flush();
    GRANITE_CHECK(std::cout.good(), "error writing stdout");
    return 0;
  });
}
