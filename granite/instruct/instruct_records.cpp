#include "granite/instruct/instruct_records.h"

#include <fstream>
#include <functional>

#include "granite/core/check.h"
#include "granite/core/strings.h"

namespace granite {

namespace {

std::string text_field(const Json& record, const char* key, const std::string& where) {
  const Json& v = record.at(key);
  GRANITE_CHECK(v.is_string(), where, ": \"", key, "\" must be a string, got ", json_preview(v));
  return v.get<std::string>();
}

}  // namespace

std::vector<ChatMessage> instruct_messages(const Json& record, const std::string& where) {
  GRANITE_CHECK(record.is_object(), where, ": a record must be a JSON object, got ", json_preview(record));
  std::vector<ChatMessage> messages;
  if (record.contains("messages")) {
    const Json& list = record["messages"];
    GRANITE_CHECK(list.is_array(), where, ": \"messages\" must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string at = where + ": messages[" + std::to_string(i) + "]";
      GRANITE_CHECK(list[i].is_object() && list[i].contains("role") && list[i].contains("content"), at,
                    ": a message needs \"role\" and \"content\"");
      const std::string role = text_field(list[i], "role", at);
      GRANITE_CHECK(role == "system" || role == "user" || role == "assistant", at, ": unknown role \"", role,
                    "\" (system, user, assistant)");
      messages.push_back({role, text_field(list[i], "content", at)});
    }
  } else if (record.contains("instruction")) {
    std::string question = text_field(record, "instruction", where);
    if (record.contains("input") && !record["input"].is_null()) {
      const std::string input = text_field(record, "input", where);
      if (!input.empty()) question += "\n\n" + input;
    }
    const char* answer_key = record.contains("output") ? "output" : record.contains("response") ? "response" : nullptr;
    GRANITE_CHECK(answer_key, where, ": an Alpaca record (\"instruction\") needs an \"output\"");
    messages = {{"user", question}, {"assistant", text_field(record, answer_key, where)}};
  } else if (record.contains("prompt")) {
    GRANITE_CHECK(record.contains("completion"), where, ": a \"prompt\" record needs a \"completion\"");
    messages = {{"user", text_field(record, "prompt", where)},
                {"assistant", text_field(record, "completion", where)}};
  } else {
    GRANITE_FAIL(where, ": not an instruction record: expected \"messages\", \"instruction\"/\"output\" or ",
                 "\"prompt\"/\"completion\", got ", json_preview(record));
  }
  bool answered = false;
  for (const ChatMessage& m : messages) answered = answered || (m.role == "assistant" && !m.content.empty());
  GRANITE_CHECK(answered, where, ": the record has no answer (no non-empty assistant turn)");
  return messages;
}

InstructFile read_instruct_file(const std::string& path, bool skip_invalid) {
  std::ifstream in(path, std::ios::binary);
  GRANITE_CHECK(in.good(), path, ": cannot open the instruction dataset");
  InstructFile out;
  auto add = [&](const std::string& where, const std::function<Json()>& parse) {
    try {
      const Json record = parse();
      out.records.push_back({instruct_messages(record, where), where});
    } catch (const Error&) {
      if (!skip_invalid) throw;
      ++out.skipped;
    }
  };
  if (ends_with(path, ".json")) {
    const Json all = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    GRANITE_CHECK(!all.is_discarded(), path, ": not valid JSON");
    GRANITE_CHECK(all.is_array(), path, ": a .json dataset must be an array of records (or use .jsonl)");
    for (size_t i = 0; i < all.size(); ++i)
      add(path + ": element " + std::to_string(i), [&] { return all[i]; });
  } else {
    GRANITE_CHECK(ends_with(path, ".jsonl"), path, ": an instruction dataset is .jsonl or .json");
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines
      const std::string where = path + ":" + std::to_string(n);
      add(where, [&] {
        Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        GRANITE_CHECK(!record.is_discarded(), where, ": not valid JSON");
        return record;
      });
    }
  }
  GRANITE_CHECK(!out.records.empty(), path, ": no usable records", out.skipped ? " (all were invalid)" : "");
  return out;
}

}  // namespace granite
