#pragma once

#include <boost/system/error_code.hpp>

namespace sluice::pool {

/// Failures reaching or using a backend.
enum class pool_errc {
    connect_timeout = 1, ///< connect + login did not finish within connect_timeout
    login_refused,       ///< the backend answered the login with an ERR
    protocol_error,      ///< the backend sent bytes the codec refused
    tls_unavailable,     ///< TLS was required but the backend does not offer it
    backend_closed,      ///< the backend closed the connection
    pool_busy,           ///< every pooled connection stayed busy past the queue timeout
};

/// The category of pool_errc; name() is "sluice.pool".
const boost::system::error_category& pool_category() noexcept;
inline boost::system::error_code make_error_code(pool_errc e) noexcept {
    return {static_cast<int>(e), pool_category()};
}

} // namespace sluice::pool

template <> struct boost::system::is_error_code_enum<sluice::pool::pool_errc> : std::true_type {};
