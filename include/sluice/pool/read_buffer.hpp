#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace sluice::pool {

/// A reusable receive buffer: bytes [begin, end) are unread. Sized once per connection and
/// grown only for a message larger than it (then shrunk back by `shrink_to`).
class ReadBuffer {
public:
    explicit ReadBuffer(std::size_t capacity) : data_(capacity) {}

    std::span<const std::uint8_t> readable() const noexcept {
        return {data_.data() + begin_, end_ - begin_};
    }
    std::size_t size() const noexcept { return end_ - begin_; }
    bool empty() const noexcept { return begin_ == end_; }
    /// Room to read into; makes room by moving unread bytes to the front, or by growing
    /// (doubling) when at least `min_room` bytes are needed and missing.
    std::span<std::uint8_t> prepare(std::size_t min_room = 1) {
        if (begin_ == end_) begin_ = end_ = 0;
        if (data_.size() - end_ < min_room && begin_ > 0) {
            std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        if (data_.size() - end_ < min_room) {
            std::size_t cap = data_.size();
            while (cap - end_ < min_room)
                cap *= 2;
            data_.resize(cap);
        }
        return {data_.data() + end_, data_.size() - end_};
    }
    void commit(std::size_t n) noexcept {
        assert(end_ + n <= data_.size()); // n bytes were written into prepare()'s span
        end_ += n;
    }
    void consume(std::size_t n) noexcept {
        assert(n <= size()); // callers consume only what they have looked at
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    /// Returns the storage to `capacity` bytes when it grew past it and nothing is unread.
    void shrink_to(std::size_t capacity) {
        if (data_.size() > capacity && empty()) {
            data_.resize(capacity);
            data_.shrink_to_fit();
        }
    }
    std::size_t capacity() const noexcept { return data_.size(); }

private:
    std::vector<std::uint8_t> data_;
    std::size_t begin_ = 0, end_ = 0;
};

} // namespace sluice::pool
