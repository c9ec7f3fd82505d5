"""LZString.compressToBase64 (pieroxy/lz-string 1.4), for building lz64
test payloads the way posthog-js does."""

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def compress_to_base64(s):
    out = _compress(s, 6, lambda a: KEY[a])
    return out + "=" * ((4 - len(out) % 4) % 4)


def _compress(uncompressed, bits, char):
    dictionary, to_create = {}, set()
    w, enlarge_in, dict_size, num_bits = "", 2, 3, 2
    data, val, pos = [], 0, 0

    def write(value, n):
        nonlocal val, pos
        for _ in range(n):
            val = (val << 1) | (value & 1)
            if pos == bits - 1:
                pos = 0
                data.append(char(val))
                val = 0
            else:
                pos += 1
            value >>= 1

    def emit(w):
        nonlocal enlarge_in, num_bits
        if w in to_create:
            c = ord(w[0])
            if c < 256:
                write(0, num_bits)
                write(c, 8)
            else:
                write(1, num_bits)
                write(c, 16)
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in = 2 ** num_bits
                num_bits += 1
            to_create.discard(w)
        else:
            write(dictionary[w], num_bits)
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in = 2 ** num_bits
            num_bits += 1

    # lz-string works on UTF-16 code units
    units = uncompressed.encode("utf-16-le")
    chars = [chr(units[i] | (units[i + 1] << 8))
             for i in range(0, len(units), 2)]
    for c in chars:
        if c not in dictionary:
            dictionary[c] = dict_size
            dict_size += 1
            to_create.add(c)
        wc = w + c
        if wc in dictionary:
            w = wc
        else:
            emit(w)
            dictionary[wc] = dict_size
            dict_size += 1
            w = c
    if w != "":
        emit(w)
    write(2, num_bits)
    while True:
        val <<= 1
        if pos == bits - 1:
            data.append(char(val))
            break
        pos += 1
    return "".join(data)
