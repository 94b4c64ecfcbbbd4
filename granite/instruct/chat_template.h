#pragma once
// Instruction templates: how a conversation becomes the text an instruct model reads, and which parts of it the
// model is trained to write. The default is the Granite Code instruct template, exactly as the models'
// tokenizer_config.json `chat_template` renders it (granite-facts.md section 3):
//   per turn  "System:\n{content}\n\n" | "Question:\n{content}\n\n" | "Answer:\n{content}\n\n"
//   then, to ask for an answer, "Answer:\n"; no BOS.
// For training, each answer is followed by EOS (<|endoftext|>) so the model learns to stop: "Answer:\n{content}"
// EOS "\n\n" -- the answer's content and its EOS are the trained tokens, everything else only context.
// Other formats are configuration, not code: a template is four strings around {content}.
#include <string>
#include <vector>

#include "granite/core/json.h"

namespace granite {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatTemplate {
  // Each has exactly one "{content}".
  std::string system = "System:\n{content}\n\n";
  std::string user = "Question:\n{content}\n\n";
  std::string assistant = "Answer:\n{content}\n\n";
  std::string generation_prompt = "Answer:\n";
  bool eos_after_answer = true;  // training: EOS right after each answer's content
};

// Strict JSON {"system", "user", "assistant", "generation_prompt", "eos_after_answer"} over the defaults; a template
// string without exactly one {content} is an error naming `where`.
ChatTemplate chat_template_from_json(const Json& j, const std::string& where);
Json to_json(const ChatTemplate& t);

// A model directory's own template: the file granite-sft writes beside its checkpoints (kChatTemplateFile), read
// strictly; Granite's default when the directory has none.
inline constexpr const char* kChatTemplateFile = "granite_chat_template.json";
ChatTemplate model_chat_template(const std::string& model_dir);

// The text of `messages` (and the generation prompt when asked): what the HF chat_template renders.
std::string render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt = false);

// The training view: consecutive pieces whose concatenation (with EOS where `eos` is set) is the rendering with EOS
// after each answer; `trained` marks an answer's content (and its EOS).
struct ChatPiece {
  std::string text;
  bool trained = false;
  bool eos = false;  // an EOS token (text empty)
};
std::vector<ChatPiece> chat_pieces(const ChatTemplate& t, const std::vector<ChatMessage>& messages);

// A Jinja chat_template for tokenizer_config.json that renders like `t` (the Granite models' own string for the
// default template), so transformers' apply_chat_template agrees with granite.
std::string jinja_chat_template(const ChatTemplate& t);

}  // namespace granite
