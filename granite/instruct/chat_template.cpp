#include "granite/instruct/chat_template.h"

#include <filesystem>

#include "granite/core/check.h"

namespace granite {

namespace {

constexpr const char* kContent = "{content}";

// The text before and after {content}.
std::pair<std::string, std::string> split(const std::string& pattern) {
  const size_t at = pattern.find(kContent);
  return {pattern.substr(0, at), pattern.substr(at + std::string(kContent).size())};
}

const std::string& pattern_for(const ChatTemplate& t, const std::string& role) {
  if (role == "system") return t.system;
  if (role == "user") return t.user;
  if (role == "assistant") return t.assistant;
  GRANITE_FAIL("unknown chat role \"", role, "\" (system, user, assistant)");
}

// A string as a Jinja string literal (single-quoted, escapes as Python's).
std::string jinja_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\'') out += "\\'";
    else if (c == '\\') out += "\\\\";
    else out += c;
  }
  return out + "'";
}

}  // namespace

ChatTemplate chat_template_from_json(const Json& j, const std::string& where) {
  JsonReader r(j, where);
  ChatTemplate t;
  r.ignore("_comment");
  t.system = r.optional<std::string>("system", t.system);
  t.user = r.optional<std::string>("user", t.user);
  t.assistant = r.optional<std::string>("assistant", t.assistant);
  t.generation_prompt = r.optional<std::string>("generation_prompt", t.generation_prompt);
  t.eos_after_answer = r.optional<bool>("eos_after_answer", t.eos_after_answer);
  r.finish();
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"system", &t.system},
                                   {"user", &t.user},
                                   {"assistant", &t.assistant}}) {
    const size_t at = value->find(kContent);
    GRANITE_CHECK(at != std::string::npos && value->find(kContent, at + 1) == std::string::npos, where, ": ", key,
                  " \"", *value, "\" must contain {content} exactly once");
  }
  return t;
}

Json to_json(const ChatTemplate& t) {
  return Json{{"system", t.system},
              {"user", t.user},
              {"assistant", t.assistant},
              {"generation_prompt", t.generation_prompt},
              {"eos_after_answer", t.eos_after_answer}};
}

std::string render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) {
    const auto [before, after] = split(pattern_for(t, m.role));
    out += before + m.content + after;
  }
  if (add_generation_prompt) out += t.generation_prompt;
  return out;
}

std::vector<ChatPiece> chat_pieces(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::vector<ChatPiece> pieces;
  auto context = [&](const std::string& text) {  // merged with the previous untrained piece
    if (text.empty()) return;
    if (!pieces.empty() && !pieces.back().trained) pieces.back().text += text;
    else pieces.push_back({text, false, false});
  };
  for (const ChatMessage& m : messages) {
    const auto [before, after] = split(pattern_for(t, m.role));
    if (m.role != "assistant") {
      context(before + m.content + after);
      continue;
    }
    context(before);
    if (!m.content.empty()) pieces.push_back({m.content, true, false});
    if (t.eos_after_answer) pieces.push_back({"", true, true});
    context(after);
  }
  return pieces;
}

std::string jinja_chat_template(const ChatTemplate& t) {
  const ChatTemplate granite;
  if (t.system == granite.system && t.user == granite.user && t.assistant == granite.assistant &&
      t.generation_prompt == granite.generation_prompt)  // the models' own string, byte for byte
    return "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ 'Question:\n' + "
           "message['content'] + '\n\n' }}{% elif message['role'] == 'system' %}\n{{ 'System:\n' + "
           "message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}{{ 'Answer:\n'  + "
           "message['content'] + '\n\n' }}{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ 'Answer:\n' "
           "}}{% endif %}{% endfor %}";
  std::string out = "{% for message in messages %}";
  const char* roles[] = {"system", "user", "assistant"};
  for (size_t i = 0; i < 3; ++i) {
    const auto [before, after] = split(pattern_for(t, roles[i]));
    out += std::string(i == 0 ? "{% if" : "{% elif") + " message['role'] == '" + roles[i] + "' %}{{ " +
           jinja_literal(before) + " + message['content'] + " + jinja_literal(after) + " }}";
  }
  out += "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ " + jinja_literal(t.generation_prompt) +
         " }}{% endif %}";
  return out;
}

ChatTemplate model_chat_template(const std::string& model_dir) {
  const std::filesystem::path custom = std::filesystem::path(model_dir) / kChatTemplateFile;
  if (!std::filesystem::exists(custom)) return {};
  return chat_template_from_json(read_json_file(custom.string()), custom.string());
}

}  // namespace granite
