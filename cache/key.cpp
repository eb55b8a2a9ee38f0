#include "sluice/cache/key.hpp"

#define XXH_STATIC_LINKING_ONLY // XXH3_state_t on the stack: no allocation per key
#include <xxhash.h>

namespace sluice::cache {

namespace {

// Bumped whenever the encoding below changes, so that proxies of two versions sharing a Redis
// never read each other's entries under one key.
constexpr std::uint8_t key_format = 2;

// Feeds XXH3 with fixed-width little-endian integers and length-prefixed fields, so that the
// byte stream is the same on every host that shares a Redis and parses back one way only.
class Encoder {
public:
    Encoder() noexcept {
        XXH3_INITSTATE(&state_);
        XXH3_128bits_reset(&state_);
    }
    void byte(std::uint8_t b) noexcept { XXH3_128bits_update(&state_, &b, 1); }
    void u64(std::uint64_t v) noexcept {
        unsigned char le[8];
        for (int i = 0; i < 8; ++i)
            le[i] = static_cast<unsigned char>(v >> (8 * i));
        XXH3_128bits_update(&state_, le, sizeof le);
    }
    void field(const void* data, std::size_t size) noexcept {
        u64(size);
        // An empty view may hold a null pointer: XXH3 accepts one with length 0.
        XXH3_128bits_update(&state_, data, size);
    }
    void field(std::string_view s) noexcept { field(s.data(), s.size()); }
    Key digest() const noexcept {
        const XXH128_hash_t h = XXH3_128bits_digest(&state_);
        return Key{h.high64, h.low64};
    }

private:
    XXH3_state_t state_;
};

} // namespace

Key make_key(const KeyInput& in) noexcept {
    Encoder e;
    e.byte(key_format);
    e.byte(static_cast<std::uint8_t>(in.protocol));
    // The flag itself is hashed too: a shared entry never answers under a user's own key.
    e.byte(in.shared ? 1 : 0);
    if (!in.shared) e.field(in.user);
    e.field(in.database);
    e.field(in.statement);
    e.byte(in.params ? 1 : 0);
    if (in.params) e.field(in.params->data(), in.params->size());
    e.field(in.charset);
    e.field(in.collation);
    e.field(in.sql_mode);
    e.field(in.time_zone);
    e.field(in.settings);
    e.u64(in.tables.size());
    for (const TableVersion& t : in.tables) {
        e.field(t.name);
        e.u64(t.version);
    }
    return e.digest();
}

std::string Key::hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(32, '0');
    for (int i = 0; i < 16; ++i) {
        out[static_cast<std::size_t>(15 - i)] = digits[(high >> (4 * i)) & 0xf];
        out[static_cast<std::size_t>(31 - i)] = digits[(low >> (4 * i)) & 0xf];
    }
    return out;
}

std::string redis_key(const Key& key, std::string_view prefix) {
    std::string out;
    out.reserve(prefix.size() + 34);
    out.append(prefix);
    out.push_back('{');
    out.append(key.hex());
    out.push_back('}');
    return out;
}

} // namespace sluice::cache
