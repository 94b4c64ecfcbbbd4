#pragma once
// The names in one directory, POSIX-only (see remove_tree.h for why not std::filesystem).
#include <string>
#include <vector>

namespace granite {

// Names without "." and "..", sorted byte-wise (std::string compares as unsigned char), so the order is the same on
// every machine whatever the locale. Errors (missing, unreadable) name the directory.
std::vector<std::string> list_directory(const std::string& dir);

}  // namespace granite
