#pragma once
// What each training token is for: the collator marks every target token, the alpha-weighted loss
// (granite/train/objective_loss.h) averages each objective over its own tokens.
#include <cstdint>
#include <ostream>

namespace granite {

enum class Objective : uint8_t {
  kIgnore = 0,  // no loss: padding, and whatever the caller masks (prompts in instruction tuning)
  kClm = 1,     // plain next-token prediction
  kFim = 2,     // a token of a fill-in-the-middle permuted document
};

inline const char* objective_name(Objective o) {
  switch (o) {
    case Objective::kIgnore: return "ignore";
    case Objective::kClm: return "clm";
    case Objective::kFim: return "fim";
  }
  return "?";
}
inline std::ostream& operator<<(std::ostream& out, Objective o) { return out << objective_name(o); }

}  // namespace granite
