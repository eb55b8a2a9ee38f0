#include "sluice/cache/l1.hpp"

#include <cassert>
#include <iterator>

namespace sluice::cache {

L1::Value L1::get(const Key& key, time_point now) noexcept {
    const auto found = index_.find(key);
    if (found == index_.end()) return nullptr;
    const List::iterator it = found->second;
    if (now >= it->expires) {
        remove(it);
        ++expirations_;
        return nullptr;
    }
    entries_.splice(entries_.begin(), entries_, it);
    return it->value;
}

bool L1::put(const Key& key, Value value, time_point expires) {
    // The old entry goes first, whatever happens to the new one: after a put the key never
    // answers with what the caller meant to replace.
    if (const auto found = index_.find(key); found != index_.end()) remove(found->second);
    const std::size_t max_entry = max_bytes_ / 8;
    // Two comparisons so that a huge size cannot overflow the sum.
    if (!value || value->size() > max_entry || value->size() + entry_overhead > max_entry)
        return false;
    const std::size_t needed = value->size() + entry_overhead;
    while (bytes_ + needed > max_bytes_) {
        // needed <= max_bytes_ / 8, so the loop ends at the latest when the list is empty.
        assert(!entries_.empty());
        remove(std::prev(entries_.end()));
        ++evictions_;
    }
    entries_.push_front(Entry{key, std::move(value), expires});
    try {
        index_.emplace(key, entries_.begin());
    } catch (...) {
        entries_.pop_front();
        throw;
    }
    bytes_ += needed;
    return true;
}

void L1::erase(const Key& key) noexcept {
    if (const auto found = index_.find(key); found != index_.end()) remove(found->second);
}

void L1::clear() noexcept {
    index_.clear();
    entries_.clear();
    bytes_ = 0;
}

void L1::remove(List::iterator it) noexcept {
    bytes_ -= cost(*it);
    index_.erase(it->key);
    entries_.erase(it);
}

} // namespace sluice::cache
