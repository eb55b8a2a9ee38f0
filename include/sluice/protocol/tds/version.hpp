#pragma once
// TDS protocol versions as LOGIN7 (little-endian) and LOGINACK (big-endian) carry them: one
// number whose top byte is 0x70..0x74 (MS-TDS 2.2.6.4, 2.2.7.14).

#include <cstdint>

namespace sluice::protocol::tds {

namespace tds_version {
inline constexpr std::uint32_t v7_0 = 0x70000000;
inline constexpr std::uint32_t v7_1 = 0x71000001;
inline constexpr std::uint32_t v7_2 = 0x72090002;
inline constexpr std::uint32_t v7_3a = 0x730A0003;
inline constexpr std::uint32_t v7_3b = 0x730B0003;
inline constexpr std::uint32_t v7_4 = 0x74000004;
} // namespace tds_version

/// TDS 7.2 widened DONE row counts to 8 bytes, UserType to 4, INFO/ERROR line numbers to 4,
/// and added ALL_HEADERS to requests.
inline constexpr bool at_least_7_2(std::uint32_t version) noexcept {
    return (version >> 24) >= 0x72;
}
/// TDS 7.4 added LOGIN7 FeatureExt.
inline constexpr bool at_least_7_4(std::uint32_t version) noexcept {
    return (version >> 24) >= 0x74;
}

} // namespace sluice::protocol::tds
