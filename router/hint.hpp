#pragma once
// Routing hints in leading comments: /* sluice: replica, max_lag=500ms */. Private.

#include "sluice/router/classify.hpp"

#include <string_view>

namespace sluice::router::detail {

/// Reads one comment token (with its delimiters: /* */, /*+ */, #, --) and, if it is a
/// well-formed sluice hint, merges it into `hint` and returns true. Anything else leaves
/// `hint` untouched and returns false.
bool parse_hint_comment(std::string_view comment, Hint& hint) noexcept;

} // namespace sluice::router::detail
