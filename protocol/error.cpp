#include "sluice/protocol/error.hpp"

#include <string>

namespace sluice::protocol {
namespace {
class CodecCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sluice.codec"; }
    std::string message(int ev) const override {
        switch (static_cast<codec_errc>(ev)) {
        case codec_errc::truncated:
            return "message truncated";
        case codec_errc::oversized:
            return "message larger than the allowed maximum";
        case codec_errc::bad_sequence:
            return "packet sequence number out of order";
        case codec_errc::unexpected_message:
            return "unexpected message for the protocol state";
        case codec_errc::malformed:
            return "malformed message";
        case codec_errc::trailing_bytes:
            return "unexpected bytes after the end of a message";
        }
        return "unknown codec error";
    }
};
} // namespace

const boost::system::error_category& codec_category() noexcept {
    static const CodecCategory category;
    return category;
}
} // namespace sluice::protocol
