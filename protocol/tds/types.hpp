#pragma once
// Private to protocol/tds: TYPE_INFO and value reading on a wire::Reader, shared by the RPC
// parser, the token scanner's buffered tokens and the public parse_type_info/parse_value.

#include "sluice/protocol/tds/type_info.hpp"
#include "wire.hpp"

namespace sluice::protocol::tds::detail {

result<TypeInfo> read_type_info(wire::Reader& r, TypeContext ctx) noexcept;
result<ValueView> read_value(wire::Reader& r, const TypeInfo& t, TypeContext ctx) noexcept;

/// The value format of a type in a context (text pointers only in rows).
inline ValueFormat value_format(const TypeInfo& t, TypeContext ctx) noexcept {
    if (t.format == ValueFormat::text_ptr && ctx == TypeContext::rpc) return ValueFormat::long_len;
    return t.format;
}

} // namespace sluice::protocol::tds::detail
