#include "granite/core/check.h"

namespace granite::detail {

// Out of line so the throw site (and its string formatting) is not inlined into every hot caller.
void throw_error(const std::string& message) { throw Error(message); }

}  // namespace granite::detail
