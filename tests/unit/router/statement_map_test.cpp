// StatementMap: the client's statement ids over each backend connection's own ids.

#include "sluice/router/statement_map.hpp"

#include <catch2/catch.hpp>

using namespace sluice::router;

TEST_CASE("statement ids count from 1 and stay unique across close and reset",
          "[router][statements]") {
    StatementMap m;
    const auto a = m.add({});
    const auto b = m.add({});
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(m.erase(a));
    CHECK_FALSE(m.erase(a));
    CHECK(m.find(a) == nullptr);
    CHECK(m.find(b) != nullptr);
    m.clear();
    CHECK(m.size() == 0);
    CHECK(m.add({}) == 3); // a client holding an old id never meets a new statement under it
}

TEST_CASE("a statement is prepared on a slot only for the connection generation it was made on",
          "[router][statements]") {
    PreparedStatement ps;
    CHECK_FALSE(ps.prepared_on(0, 0)); // generation 0: never prepared
    ps.prepared(0, 77, 5, 2);
    CHECK(ps.params == 2);
    CHECK(ps.id[0] == 77);
    CHECK(ps.prepared_on(0, 5));
    CHECK_FALSE(ps.prepared_on(0, 6)); // the connection was replaced
    CHECK_FALSE(ps.prepared_on(1, 5));
}

TEST_CASE("new parameter types are unseen by every backend until sent", "[router][statements]") {
    PreparedStatement ps;
    ps.prepared(0, 1, 1, 1);
    ps.prepared(1, 2, 2, 1);
    ps.types_sent = {true, true};
    ps.bind_types({0x08, 0x00});
    CHECK(ps.types == std::vector<std::uint8_t>{0x08, 0x00});
    CHECK_FALSE(ps.types_sent[0]);
    CHECK_FALSE(ps.types_sent[1]);
    ps.types_sent[1] = true;
    ps.prepared(1, 3, 4, 1); // prepared again on a new connection: it has not seen them
    CHECK_FALSE(ps.types_sent[1]);
}
