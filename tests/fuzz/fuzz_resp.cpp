// Fuzz target: the RESP2 reply reader (cache/resp.cpp, hiredis 0.14 underneath). The first
// input byte seeds the chunk sizes; the rest is a byte stream from a "Redis server". It is
// read twice, fed whole and fed in chunks of pseudo-random sizes with next() drained after
// each: both must give the same replies and fail alike, and a failed reader must stay failed.
// Small limits so that refusals are reached. Replies that are arrays of bulk strings (what
// write_command writes) must read back equal after encoding; redirections and slots found
// along the way must be in range.

#include "sluice/cache/resp.hpp"

#include <cstdlib>
#include <string_view>
#include <vector>

using namespace sluice;
using namespace sluice::cache;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

constexpr ReaderLimits limits{1024, 16, 64};

struct Outcome {
    std::vector<Reply> replies;
    bool failed = false;
};

// Drains next() into `out`; false once the reader failed (after checking it stays failed).
bool drain(ReplyReader& reader, Outcome& out) {
    for (;;) {
        auto step = reader.next();
        if (step.has_error()) {
            check(reader.failed());
            auto again = reader.next();
            check(again.has_error() && again.error() == step.error());
            out.failed = true;
            return false;
        }
        if (!*step) return true;
        out.replies.push_back(std::move(**step));
    }
}

void inspect(const Reply& r) {
    if (auto redirect = parse_redirect(r)) {
        check(r.kind == ReplyKind::error);
        check(redirect->slot < 16384 && redirect->port != 0);
    }
    if (r.kind == ReplyKind::bulk) check(key_slot(r.str) < 16384);
    if (r.kind != ReplyKind::array) return;
    bool all_bulk = !r.elements.empty();
    for (const auto& e : r.elements) {
        inspect(e);
        all_bulk = all_bulk && e.kind == ReplyKind::bulk;
    }
    if (!all_bulk) return;
    std::vector<std::string_view> args;
    for (const auto& e : r.elements)
        args.push_back(e.str);
    std::vector<std::uint8_t> wire;
    write_command(wire, args);
    ReplyReader again{limits};
    again.feed(wire);
    auto back = again.next();
    check(back.has_value() && back->has_value() && **back == r);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint32_t seed = data[0] * 2654435761u + 1;
    const Bytes stream{data + 1, size - 1};

    Outcome whole;
    {
        ReplyReader reader{limits};
        reader.feed(stream);
        drain(reader, whole);
        reader.feed(stream); // ignored once failed; harmless otherwise
    }

    Outcome chunked;
    {
        ReplyReader reader{limits};
        std::size_t at = 0;
        while (at < stream.size()) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            const std::size_t n = std::min<std::size_t>(1 + seed % 37, stream.size() - at);
            reader.feed(stream.subspan(at, n));
            at += n;
            if (!drain(reader, chunked)) break;
        }
    }

    check(whole.failed == chunked.failed);
    check(whole.replies == chunked.replies);
    for (const auto& r : whole.replies)
        inspect(r);
    return 0;
}
