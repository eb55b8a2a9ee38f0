#pragma once
// Table versions (issue #9 "Invalidation"): one counter per table, part of every cache key
// that reads the table, so a bump makes every entry filled before it unreachable at once,
// in every worker, without finding or deleting the entries (they age out of the LRU and
// Redis by themselves). Thread-safe; a lookup of a known table is two atomic loads.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sluice::cache {

/// The name of the version every key includes: bumped when a write's tables are not known
/// (a CALL, a multi-statement, CREATE DATABASE ...), it invalidates everything.
inline constexpr std::string_view all_tables = "*";

/// One table's version, and what a result must reflect to be cached under it.
class TableState {
public:
    explicit TableState(std::string name) : name_(std::move(name)) {}
    /// The qualified name (or all_tables) it is the version of.
    const std::string& name() const noexcept { return name_; }
    /// The version now and the newest write (a watermark version, see AckedWrites) a result
    /// must reflect to be filled under it. `needs` is read after `version` and bumps store
    /// it before they move `version`, so it is never older than the one that goes with the
    /// version read (it may be newer: a stricter check, never a stale fill).
    std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
    std::uint64_t needs() const noexcept { return needs_.load(std::memory_order_acquire); }

    /// A write to the table: whatever was cached under the old version is unreachable;
    /// results filled from now on must reflect write `needs` (0: any).
    void bump(std::uint64_t needs) noexcept;
    /// Another holder of the versions (a Redis shared by several Sluice processes) says the
    /// table is at `version`: adopted when newer than ours.
    void raise_to(std::uint64_t version, std::uint64_t needs) noexcept;
    /// After the versions were lost (Redis unreachable while a write happened): the version
    /// Redis holds now, even if lower, and what results must reflect from now on. Only safe
    /// when every key made before is unreachable anyway (all_tables moved to a new value).
    void reset_to(std::uint64_t version, std::uint64_t needs) noexcept {
        needs_.store(needs, std::memory_order_release);
        version_.store(version, std::memory_order_release);
    }

private:
    std::string name_;
    static void store_max(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept;
    std::atomic<std::uint64_t> version_{0};
    std::atomic<std::uint64_t> needs_{0};
};

/// Every table's version, by qualified lower-case name (`schema.table`), plus all_tables.
/// Entries are created on first use and never removed, so a reference stays valid as long
/// as the TableVersions lives (workers keep them in their own maps, without the lock).
class TableVersions {
public:
    TableVersions();
    TableVersions(const TableVersions&) = delete;
    TableVersions& operator=(const TableVersions&) = delete;

    /// The table's version, created at 0.
    TableState& table(std::string_view name);
    TableState& all() noexcept { return *all_; }
    /// Calls `f` for each table known (all_tables included), under the lock (keep it short).
    void for_each(const std::function<void(TableState&)>& f);
    std::size_t size() const;

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::unique_ptr<TableState>, Hash, std::equal_to<>> map_;
    TableState* all_ = nullptr;
};

} // namespace sluice::cache
