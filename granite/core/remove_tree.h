#pragma once
// Recursive delete that does not go through std::filesystem::remove_all.
// Why: the LibTorch inside PyTorch's pip wheels (seen with 2.11 + g++ 13) carries its own copy of
// std::filesystem::remove_all, linked in from the wheel toolchain's static libstdc++ parts, and exports it. Programs
// linked against that libtorch bind to it, and it segfaults (jumps to address 0) on any non-empty directory.
// Everything in granite (and its tests) removes trees with this function instead.
#include <string>

namespace granite {

// Removes `path` (a file or a whole directory tree, symlinks not followed); a missing path is not an error.
void remove_tree(const std::string& path);

}  // namespace granite
