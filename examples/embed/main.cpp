// granite_embed MODEL_DIR [prompt ids...]
// Loads a Hugging Face Granite Code checkpoint directory and greedily generates 8 tokens after the prompt
// (default prompt: the model's BOS token).
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "granite/granite.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR [prompt ids...]\n";
    return 2;
  }
  try {
    granite::CausalLM model = granite::load_pretrained(argv[1]);
    model->eval();

    std::vector<int64_t> prompt;
    for (int i = 2; i < argc; ++i) prompt.push_back(std::stoll(argv[i]));
    if (prompt.empty()) prompt.push_back(model->config().bos_token_id);

    granite::GenerationOptions opts;
    opts.max_new_tokens = 8;
    opts.sampling.greedy = true;
    std::vector<int64_t> ids = granite::generate(*model, prompt, opts);

    std::cout << "architecture: " << granite::to_string(model->config().architecture) << "\n"
              << "parameters: " << granite::count_parameters(model->config()) << "\n"
              << "generated:";
    for (int64_t id : ids) std::cout << " " << id;
    std::cout << "\n";
  } catch (const granite::Error& e) {  // bad input: missing files, wrong shapes, invalid ids...
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {  // e.g. a prompt id that is not a number
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
