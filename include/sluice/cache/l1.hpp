#pragma once
// The L1 cache (issue #9 "Layers"): an in-process LRU per worker, bounded in bytes. One per
// worker thread, so no locks: not thread-safe. Time is passed in; no clock, no logging.

#include "sluice/cache/key.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

namespace sluice::cache {

/// Least-recently-used map from Key to an immutable blob (the replay codec's format), with an
/// expiry time per entry and a bound on the bytes it holds. get, put and erase are O(1) on
/// average; a put evicts from the least recently used end until the new entry fits.
class L1 {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using Value = std::shared_ptr<const std::string>;

    /// The default bound, 64 MiB (issue #9).
    static constexpr std::size_t default_max_bytes = std::size_t{64} << 20;
    /// What an entry costs beside its blob's size(), in bytes: an estimate of what one entry
    /// really takes on a 64-bit libstdc++/glibc build, rounded up. The list node (two links,
    /// key, value pointer, expiry: 56 bytes, 64 with malloc's header), the index node (48
    /// with the header) and its share of the bucket array (about 16), the blob's control
    /// block and std::string (64 with the header), and the string buffer's malloc slack (up
    /// to 24): about 216. Counting it keeps many tiny entries from overrunning the bound.
    static constexpr std::size_t entry_overhead = 256;

    /// An empty cache holding at most `max_bytes` (entries' blob sizes plus entry_overhead
    /// each). Entries larger than max_bytes / 8 are refused, so max_bytes below
    /// 8 * entry_overhead (0 for instance) makes a cache that stores nothing.
    explicit L1(std::size_t max_bytes) noexcept : max_bytes_(max_bytes) {}
    L1(const L1&) = delete;
    L1& operator=(const L1&) = delete;

    /// The value stored under `key`, moved to the most recently used end; nullptr when there
    /// is none. An entry is expired when now >= its expiry (the expiry instant itself is
    /// already too late, as a TTL of 0 must never hit): it is removed, counted in
    /// expirations(), and the lookup is a miss.
    Value get(const Key& key, time_point now) noexcept;

    /// Stores `value` under `key` until `expires`, as the most recently used entry, replacing
    /// any entry the key had. False, and the key left with no entry, when `value` is null or
    /// costs (size() + entry_overhead) more than max_bytes / 8: one large result must not
    /// flush most of a worker's cache to make room for itself, and for a result that large the
    /// L2 round trip that L1 saves is a small part of its cost. Otherwise evicts least recently
    /// used entries (counted in evictions(), expired or not) until it fits, and returns true.
    bool put(const Key& key, Value value, time_point expires);

    /// Removes the entry of `key`, if any (counted neither as an eviction nor an expiration).
    void erase(const Key& key) noexcept;
    /// Removes every entry. The counters keep counting.
    void clear() noexcept;

    /// The bytes held: the sum over entries of blob size() + entry_overhead.
    std::size_t bytes() const noexcept { return bytes_; }
    /// The number of entries (expired ones included until a get or an eviction finds them).
    std::size_t size() const noexcept { return entries_.size(); }
    /// The bound given to the constructor.
    std::size_t max_bytes() const noexcept { return max_bytes_; }
    /// Entries removed by put() to make room, since construction.
    std::uint64_t evictions() const noexcept { return evictions_; }
    /// Entries found expired by get(), since construction.
    std::uint64_t expirations() const noexcept { return expirations_; }

private:
    struct Entry {
        Key key;
        Value value;
        time_point expires;
    };
    using List = std::list<Entry>; // front: most recently used

    static std::size_t cost(const Entry& e) noexcept { return e.value->size() + entry_overhead; }
    void remove(List::iterator it) noexcept; // from both the list and the index

    std::size_t max_bytes_;
    std::size_t bytes_ = 0;
    std::uint64_t evictions_ = 0;
    std::uint64_t expirations_ = 0;
    List entries_;
    std::unordered_map<Key, List::iterator> index_;
};

} // namespace sluice::cache
