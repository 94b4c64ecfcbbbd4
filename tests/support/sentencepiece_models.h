#pragma once
// sentencepiece models trained by the tests themselves with Debian's spm_train (package `sentencepiece`), on real
// English text every Debian/Ubuntu system has (/usr/share/common-licenses, from the essential package base-files),
// plus the spm_encode / spm_decode command-line programs as the reference the tokenizer is compared with.
// The programs' paths come from CMake (find_program in tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "support/shell.h"

namespace granite::test {

// Path of spm_train / spm_encode / spm_decode, failing the test with the fix when the package is missing.
inline std::string spm_program(const std::string& configured, const std::string& name) {
  INFO(name << " not found when CMake configured the tests: install Debian's `sentencepiece` package "
               "(scripts/install_deps.sh) and reconfigure");
  REQUIRE(configured.find("NOTFOUND") == std::string::npos);
  REQUIRE(std::filesystem::exists(configured));
  return configured;
}
inline std::string spm_train_program() { return spm_program(GRANITE_SPM_TRAIN, "spm_train"); }
inline std::string spm_encode_program() { return spm_program(GRANITE_SPM_ENCODE, "spm_encode"); }
inline std::string spm_decode_program() { return spm_program(GRANITE_SPM_DECODE, "spm_decode"); }

// A license text from /usr/share/common-licenses (GPL-3, Apache-2.0, MPL-2.0, ...).
inline std::string license_path(const std::string& name) {
  const std::string path = "/usr/share/common-licenses/" + name;
  INFO(path << " is missing (Debian's base-files package ships it)");
  REQUIRE(std::filesystem::is_regular_file(path));
  return path;
}

// Trains <dir>/<name>.model on GPL-3 + Apache-2.0 (~46 KB of English) and returns its path. `model_type` is bpe or
// unigram; each of `extra_flags` goes to spm_train as one argument (e.g. "--byte_fallback=true"). About 0.1-0.3 s.
inline std::string train_sentencepiece(const std::string& dir, const std::string& name, const std::string& model_type,
                                       int vocab_size = 500, const std::vector<std::string>& extra_flags = {}) {
  const std::string prefix = dir + "/" + name;
  std::string command = quoted(spm_train_program()) +
                        " --input=" + quoted(license_path("GPL-3") + "," + license_path("Apache-2.0")) +
                        " --model_prefix=" + quoted(prefix) + " --model_type=" + model_type +
                        " --vocab_size=" + std::to_string(vocab_size);
  for (const auto& flag : extra_flags) command += " " + quoted(flag);
  command += " > " + quoted(prefix + ".train.log") + " 2>&1";
  const auto run = shell(command);
  std::ifstream log(prefix + ".train.log");
  std::stringstream log_text;
  log_text << log.rdbuf();
  INFO(command << "\n" << log_text.str());
  REQUIRE(run.status == 0);
  REQUIRE(std::filesystem::is_regular_file(prefix + ".model"));
  return prefix + ".model";
}

// The FIM pieces the Granite Code tokenizers have, as sentencepiece user-defined symbols.
inline std::string fim_symbols_flag() {
  return "--user_defined_symbols=<fim_prefix>,<fim_middle>,<fim_suffix>,<fim_pad>";
}

}  // namespace granite::test
