#pragma once
// Statement text Sluice changes before a backend runs it.

#include "sluice/router/classify.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::router {

/// Replaces every call of CONNECTION_ID() in `sql` (outside strings and comments, not a
/// qualified db.connection_id()) with `id`, so the statement reports the connection id the
/// client got in its greeting, whichever backend connection runs it and across
/// COM_CHANGE_USER. A call that is a whole select-list item keeps the column name the server
/// would have given it: `SELECT CONNECTION_ID()` becomes
/// ``SELECT 1073741825 AS `CONNECTION_ID()` ``. IS_USED_LOCK(x) names a lock this session
/// holds by that id too (its backend thread is replaced by it), so the idiom
/// `IS_USED_LOCK(x) = CONNECTION_ID()` holds. nullopt when `sql` calls neither.
std::optional<std::string> rewrite_connection_id(std::string_view sql, SqlMode mode,
                                                 std::uint32_t id);

} // namespace sluice::router
