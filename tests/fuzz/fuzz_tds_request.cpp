// Fuzz target: the client request parsers (SQLBatch, RPC, transaction manager) on the same
// arbitrary bytes. A request that parses must still parse, to the same content, after its
// transaction descriptor is rewritten (as the proxy does for every request it forwards).

#include "sluice/protocol/tds/request.hpp"

#include <cstdlib>

using namespace sluice;
using namespace sluice::protocol::tds;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

constexpr std::uint64_t descriptor = 0x0123456789ABCDEF;

std::vector<std::uint8_t> rewritten(Bytes in) {
    std::vector<std::uint8_t> out;
    check(rewrite_transaction_descriptor(in, descriptor, 1, out).has_value());
    std::vector<std::uint8_t> patched(in.begin(), in.end());
    auto p = patch_transaction_descriptor(patched, descriptor);
    check(p.has_value());
    if (*p) check(patched == out); // in place and by copy agree when a header is there
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Bytes in{data, size};
    if (auto b = parse_sql_batch(in)) {
        const auto out = rewritten(in);
        auto again = parse_sql_batch(out);
        check(again && again->text == b->text && again->headers &&
              again->headers->transaction_descriptor == descriptor);
    }
    if (auto r = parse_rpc(in)) {
        for (const auto& call : r->calls) {
            (void)call.statement_text();
            (void)call.handle();
        }
        const auto out = rewritten(in);
        auto again = parse_rpc(out);
        check(again && again->calls.size() == r->calls.size());
        for (std::size_t i = 0; i < r->calls.size(); ++i) {
            check(again->calls[i].params.size() == r->calls[i].params.size());
            check(again->calls[i].statement_text() == r->calls[i].statement_text());
            check(again->calls[i].handle() == r->calls[i].handle());
        }
    }
    if (auto tm = parse_tm_request(in)) {
        const auto out = rewritten(in);
        auto again = parse_tm_request(out);
        check(again && again->type == tm->type && again->name == tm->name);
    }
    return 0;
}
