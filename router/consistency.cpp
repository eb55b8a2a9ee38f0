#include "sluice/router/consistency.hpp"

#include "sluice/protocol/mysql/gtid.hpp"

namespace sluice::router {

Freshness freshness(std::string_view token, std::string_view known_applied) {
    if (token.empty() || token == known_applied) return Freshness::fresh;
    return protocol::mysql::gtid_covers(known_applied, token) ? Freshness::fresh
                                                              : Freshness::wait_for;
}

} // namespace sluice::router
