#pragma once
// Instruction datasets as conversations, from the common shapes of JSON Lines (.jsonl) or JSON arrays (.json):
//   Alpaca            {"instruction", "input" (optional), "output"}   ("response" when there is no "output")
//                     -> user: instruction, followed by "\n\n" + input when there is one; assistant: output
//   chat              {"messages": [{"role": "system" | "user" | "assistant", "content"}, ...]}  (multi-turn)
//   prompt/completion {"prompt", "completion"}
// Every record must give at least one non-empty answer. A bad record (not JSON, no known shape, an unknown role, no
// answer) is an error naming the file and its line (JSONL) or element (JSON array) -- or, with skip_invalid, it is
// counted and left out.
#include <string>
#include <vector>

#include "granite/instruct/chat_template.h"

namespace granite {

struct InstructRecord {
  std::vector<ChatMessage> messages;
  std::string where;  // "file:line" / "file: element N", for errors about this record later (its length)
};

struct InstructFile {
  std::vector<InstructRecord> records;
  int64_t skipped = 0;  // invalid records left out (skip_invalid)
};

InstructFile read_instruct_file(const std::string& path, bool skip_invalid = false);

// One record's JSON as a conversation, or an error naming `where`.
std::vector<ChatMessage> instruct_messages(const Json& record, const std::string& where);

}  // namespace granite
