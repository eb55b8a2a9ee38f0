#!/usr/bin/python3
"""Writes the seed corpora corpus/<target>/ from the golden vectors in tests/vectors/mysql/.

Run it again after re-capturing the vectors. Crash reproducers added by hand (named
crash-*) are left alone.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors", "mysql")


def packets(name):
    with open(os.path.join(VECTORS, name + ".hex")) as f:
        return [bytes.fromhex(l.strip()) for l in f if l.strip() and not l.startswith("#")]


def wire(name):
    return b"".join(packets(name))


def payload(name):
    return packets(name)[0][4:]


def pkt(seq, p):
    return len(p).to_bytes(3, "little") + bytes([seq]) + p


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# fuzz_packet: wire bytes.
write("packet", "com_query_select_1", pkt(0, b"\x03select 1"))
write("packet", "select_rows_stream", wire("cli_select_rows"))
write("packet", "greeting", wire("cli_greeting"))
write("packet", "empty_packet", pkt(9, b""))
write("packet", "max_header", b"\xff\xff\xff\x00abc")

# fuzz_handshake: a payload for the parsers, a packet stream for the login machines.
write("handshake", "greeting_payload", payload("cli_greeting"))
write("handshake", "cli_response_payload", payload("cli_handshake_response"))
write("handshake", "sha2_response_payload", payload("switch_response"))
write("handshake", "ok_payload", payload("cli_handshake_ok"))
write("handshake", "err_payload", payload("cli_error"))
write("handshake", "eof_payload", packets("eof_select_rows")[-1][4:])
write("handshake", "auth_switch_payload", payload("switch_request"))
write("handshake", "change_user_payload", bytes.fromhex(
    "1161707000140102030405060708090a0b0c0d0e0f1011121314736c756963655f74657374002d00"
    "6d7973716c5f6e61746976655f70617373776f7264000a035f6f73054c696e7578"))
write("handshake", "backend_switch_flow",
      wire("switch_greeting") + wire("switch_request") + wire("switch_ok"))
write("handshake", "backend_login_ok", wire("cli_greeting") + wire("cli_handshake_ok"))
write("handshake", "backend_sha2_rsa_flow", wire("cli_greeting") + pkt(2, b"\x01\x04") +
      pkt(4, b"\x01-----BEGIN PUBLIC KEY-----\n") + pkt(6, b"\x00\x00\x00\x02\x00\x00\x00"))
write("handshake", "server_cli_login", wire("cli_handshake_response"))
write("handshake", "server_switch_flow", wire("switch_response") + wire("switch_reply"))

# fuzz_response_scanner: kind byte (0 query, 1 prepare, 2 rows, 3 field_list, 4 single;
# 0x80 = CLIENT_DEPRECATE_EOF), a chunk size byte, then the server's bytes.
def scanner(name, kind, deof, chunk, data):
    write("response_scanner", name, bytes([kind | (0x80 if deof else 0), chunk]) + data)


scanner("eof_select_rows", 0, False, 3, wire("eof_select_rows"))
scanner("deof_select_rows", 0, True, 5, wire("deof_select_rows"))
scanner("eof_multi_statement", 0, False, 1, wire("eof_multi_statement"))
scanner("deof_compound", 0, True, 7, wire("deof_compound"))
scanner("eof_error_mid_rows", 0, False, 2, wire("eof_error_mid_rows"))
scanner("deof_multi_dml", 0, True, 4, wire("deof_multi_dml"))
scanner("eof_local_infile", 0, False, 3,
        wire("eof_local_infile_request") + wire("eof_local_infile_result"))
scanner("eof_execute_cursor", 0, False, 6, wire("eof_execute_cursor"))
scanner("deof_execute_binary_rows", 0, True, 9, wire("deof_execute_binary_rows"))
scanner("eof_prepare_params_columns", 1, False, 2, wire("eof_prepare_params_columns"))
scanner("deof_prepare_params_columns", 1, True, 3, wire("deof_prepare_params_columns"))
scanner("eof_fetch_rest", 2, False, 5, wire("eof_fetch_rest"))
scanner("deof_field_list", 3, True, 1, wire("deof_field_list"))
scanner("eof_statistics", 4, False, 0, wire("eof_statistics"))

# fuzz_stmt: a selector byte (parameter count; bit 0: DEPRECATE_EOF), then one payload, or
# result-set payloads each preceded by a 2-byte little-endian length.
def len_prefixed(name):
    return b"".join(len(p[4:]).to_bytes(2, "little") + p[4:] for p in packets(name))


write("stmt", "execute_bound_2_params",
      bytes.fromhex("02" "17040302010001000000" "00010800fd00" "0700000000000000026162"))
write("stmt", "execute_unbound_2_params",
      bytes.fromhex("02" "17040302010001000000" "0000" "0700000000000000026162"))
write("stmt", "execute_cursor_9_params",
      bytes.fromhex("09" "17010000000101000000" "ffff01" + "0600" * 9))
write("stmt", "prepare_ok", b"\x00" + packets("deof_prepare_params_columns")[0][4:])
write("stmt", "long_data", bytes.fromhex("00" "182a0000000100") + b"hello")
write("stmt", "fetch", bytes.fromhex("00" "1c0403020100010000"))
write("stmt", "close", bytes.fromhex("00" "19efbeadde"))
write("stmt", "process_kill", bytes.fromhex("00" "0c4d000000"))
write("stmt", "text_result_deprecate_eof", b"\x01" + len_prefixed("deof_select_rows"))
write("stmt", "text_result_eof_null_first", b"\x00" + len_prefixed("eof_select_null_first"))

# fuzz_gtid: a position, optionally '|' and a second one (a token to compare).
write("gtid", "mariadb", b"0-1-5")
write("gtid", "two_domains", b"0-1-5,1-2-9|0-1-4")
write("gtid", "mysql", b"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9|"
      b"3e11fa47-71ca-11e1-9e33-c80aa9429562:8")
write("gtid", "spaces", b" 0-1-1 ,\n 2-3-4")
