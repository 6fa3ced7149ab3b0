/* connectx.intake._cardscan: the card-number pre-scan of a raw webhook body
 * (connectx/intake/cardscan.py says why and how it is built).
 *
 * scan(body) answers False only when the body certainly holds nothing masking.py would mask: no
 * decimal digit of another script, raw (UTF-8) or as a JSON escape (nor an ASCII digit, space
 * or hyphen as one; a surrogate pair read as one code point; a backslash escaped by another
 * starts no escape), and every stretch of digits, spaces and hyphens holding 13 digits or more
 * (what a card number needs) digits only and either an identifier's value as Meta writes them
 * (right after '"<key>":"' with <key> one of the identifier fields) or glued to a word
 * character, '+' or '.' before it. What masking.py would have to decide (bytes that are not
 * UTF-8, "\U", a "\u" without four hex digits) answers True, as does anything else
 * suspicious, and the body goes through masking.py's own checks. It reads 64 bytes a step with
 * SSE2 where the compiler has it (every x86-64), a byte a step elsewhere and for the rest of a
 * body (scan_bytewise: that way only, for tests). No allocation, no state but the identifier
 * names and digit ranges set once at import. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MIN_RUN 13

static char identifiers[4096]; /* "key\0key\0...\0" */
static size_t identifiers_len;

/* Whether the stretch at s[start] (digits only) is the value of an identifier field. */
static int keyed(const unsigned char *s, size_t start) {
    if (start < 4 || s[start - 1] != '"' || s[start - 2] != ':' || s[start - 3] != '"') return 0;
    size_t end = start - 3, from = end;
    while (from > 0 && s[from - 1] != '"') from--;
    if (from == 0) return 0;
    size_t len = end - from;
    for (const char *name = identifiers; name < identifiers + identifiers_len;) {
        size_t n = strlen(name);
        if (n == len && memcmp(name, s + from, len) == 0) return 1;
        name += n + 1;
    }
    return 0;
}

/* Decimal digits outside ASCII (Unicode category Nd: Arabic-Indic, Persian, Devanagari,
 * fullwidth, mathematical...), as inclusive ranges of code points, set once by set_digits. */
static uint32_t digit_ranges[512][2];
static size_t digit_range_count;

static int other_digit(uint32_t cp) {
    size_t lo = 0, hi = digit_range_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < digit_ranges[mid][0])
            hi = mid;
        else if (cp > digit_ranges[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int hex4(const unsigned char *s, size_t at, size_t n, uint32_t *out) {
    if (at + 4 > n) return 0;
    uint32_t v = 0;
    for (size_t i = at; i < at + 4; i++) {
        unsigned char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* s[at] is a backslash and s[at + 1] a 'u' or 'U': 1 when it is an escape that is (or may
 * be) a digit of another script, as masking.py's raw_unicode_escape decoding reads it. A
 * backslash escaped by another ("\\u0664" typed as text) starts none. "\U", a "\u" without
 * four hex digits: 1 (rare; masking.py decides). A surrogate pair is read as one code point. */
static int escape_at(const unsigned char *s, size_t at, size_t n) {
    size_t before = 0;
    while (before < at && s[at - 1 - before] == '\\') before++;
    if (before % 2) return 0; /* this backslash is itself escaped */
    uint32_t cp, low;
    if (s[at + 1] == 'U' || !hex4(s, at + 2, n, &cp)) return 1;
    if (cp >= 0xD800 && cp <= 0xDBFF && at + 11 < n && s[at + 6] == '\\' && s[at + 7] == 'u' &&
        hex4(s, at + 8, n, &low) && low >= 0xDC00 && low <= 0xDFFF)
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    /* an ASCII digit, space or hyphen escaped: a card typed so is one (masking.py parses) */
    return (cp >= '0' && cp <= '9') || cp == ' ' || cp == '-' || other_digit(cp);
}

/* s[at] is a byte of 0x80 or more: 1 when the UTF-8 character it starts is a digit of another
 * script or is not valid UTF-8 (masking.py decides); a continuation byte is skipped (its
 * character was read from its first byte). */
static int utf8_at(const unsigned char *s, size_t at, size_t n) {
    unsigned char c = s[at];
    if ((c & 0xC0) == 0x80) return 0;
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 1;
    }
    if (at + len > n) return 1;
    for (size_t i = 1; i < len; i++) {
        if ((s[at + i] & 0xC0) != 0x80) return 1;
        cp = cp << 6 | (s[at + i] & 0x3F);
    }
    return other_digit(cp);
}

typedef struct {
    int in_run;       /* the byte before the position reached was a digit, space or hyphen */
    size_t start;     /* where that stretch began */
    size_t digits;    /* the digits in it so far */
    int separated;    /* it holds a space or hyphen */
} run_state;

/* A word character, '+' or '.': digits right after one are no card to masking.py (an id, a
 * BSUID's "US.1349...", a phone number, an amount). */
static int glued(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '+' || c == '.';
}

/* A stretch ended: 1 when it holds enough digits for a card (13) and is neither an
 * identifier's compact value nor digits glued to what precedes them. */
static int suspicious(const unsigned char *s, const run_state *r) {
    if (r->digits < MIN_RUN) return 0;
    if (r->separated) return 1;
    return !(r->start > 0 && glued(s[r->start - 1])) && !keyed(s, r->start);
}

static int is_separator(unsigned char c) { return c == ' ' || c == '-'; }

/* A byte a stretch may hold: a digit, a space or a hyphen. */
static int in_stretch(unsigned char c) { return (c >= '0' && c <= '9') || is_separator(c); }

/* s[i] joins the stretch in *r (starting one if none is open). */
static void extend(run_state *r, const unsigned char *s, size_t i) {
    if (!r->in_run) {
        r->in_run = 1;
        r->start = i;
        r->digits = 0;
        r->separated = 0;
    }
    if (is_separator(s[i]))
        r->separated = 1;
    else
        r->digits++;
}

/* s[from..n) a byte a step: 1 as soon as something is suspicious, the stretch ending the body
 * included. s[from] must not be inside a stretch that began before it. */
static int scan_bytes(const unsigned char *s, size_t from, size_t n) {
    run_state r = {0, 0, 0, 0};
    for (size_t i = from; i < n; i++) {
        unsigned char c = s[i];
        if (in_stretch(c)) {
            extend(&r, s, i);
            continue;
        }
        if (r.in_run) {
            r.in_run = 0;
            if (suspicious(s, &r)) return 1;
        }
        if (c >= 0x80 && utf8_at(s, i, n)) return 1;
        if (c == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U') && escape_at(s, i, n))
            return 1;
    }
    return r.in_run && suspicious(s, &r);
}

#if defined(__SSE2__)
typedef struct {
    uint64_t cls, backslash, u, high;
} block_masks;

static block_masks masks_of(const unsigned char *p) {
    const __m128i zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
    const __m128i space = _mm_set1_epi8(' '), hyphen = _mm_set1_epi8('-');
    const __m128i backslash = _mm_set1_epi8('\\'), u = _mm_set1_epi8('u');
    const __m128i upper = _mm_set1_epi8('U');
    block_masks m = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        __m128i d = _mm_sub_epi8(v, zero);
        __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d);
        __m128i sep = _mm_or_si128(_mm_cmpeq_epi8(v, space), _mm_cmpeq_epi8(v, hyphen));
        int shift = 16 * k;
        m.cls |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_or_si128(digit, sep)) << shift;
        m.backslash |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)) << shift;
        __m128i either = _mm_or_si128(_mm_cmpeq_epi8(v, u), _mm_cmpeq_epi8(v, upper));
        m.u |= (uint64_t)(unsigned)_mm_movemask_epi8(either) << shift;
        m.high |= (uint64_t)(unsigned)_mm_movemask_epi8(v) << shift;
    }
    return m;
}

/* The stretch of digits, spaces and hyphens around s[at]: 1 when it is suspicious. Its end
 * goes to *end. */
static int stretch_at(const unsigned char *s, size_t n, size_t at, size_t *end) {
    size_t start = at, i;
    while (start > 0 && in_stretch(s[start - 1])) start--;
    run_state r = {0, 0, 0, 0};
    for (i = start; i < n && in_stretch(s[i]); i++) extend(&r, s, i);
    *end = i;
    return suspicious(s, &r);
}

/* Bit i set: bits i .. i+12 of m are set (a stretch of 13 begins at i within the word). */
static uint64_t thirteen_from(uint64_t m) {
    uint64_t two = m & (m >> 1), four = two & (two >> 2), eight = four & (four >> 4);
    return eight & (four >> 8) & (m >> 12);
}

/* The 64-byte blocks of s from 0: 1 as soon as one holds (or ends) something suspicious; the
 * rest is left to scan_bytes from *done (the start of a stretch running into it, unchecked). */
static int scan_blocks(const unsigned char *s, size_t n, size_t *done) {
    size_t base = 0, checked = 0; /* stretches before `checked` were looked at */
    unsigned trailing = 0;        /* digits, spaces and hyphens ending the previous block */
    for (; base + 64 <= n; base += 64) {
        block_masks m = masks_of(s + base);
        for (uint64_t h = m.high; h; h &= h - 1) {
            if (utf8_at(s, base + (size_t)__builtin_ctzll(h), n)) return 1;
        }
        for (uint64_t b = m.backslash & ((m.u >> 1) | ((uint64_t)1 << 63)); b; b &= b - 1) {
            size_t at = base + (size_t)__builtin_ctzll(b);
            if (at + 1 < n && (s[at + 1] == 'u' || s[at + 1] == 'U') && escape_at(s, at, n))
                return 1;
        }
        uint64_t leading = ~m.cls ? (uint64_t)__builtin_ctzll(~m.cls) : 64;
        if (trailing + leading >= MIN_RUN && base > checked) {
            if (stretch_at(s, n, base, &checked)) return 1;
        }
        for (uint64_t t = thirteen_from(m.cls); t; t &= t - 1) {
            size_t at = base + (size_t)__builtin_ctzll(t);
            if (at < checked) continue;
            if (stretch_at(s, n, at, &checked)) return 1;
        }
        trailing = m.cls == ~(uint64_t)0 ? trailing + 64 : (unsigned)__builtin_clzll(~m.cls);
    }
    *done = base > checked ? base - trailing : checked;
    return 0;
}
#endif

/* 0: nothing to mask in s[0..n); 1: let masking.py look. simd 0 reads it a byte a step. */
static int cx_scan(const unsigned char *s, size_t n, int simd) {
    size_t i = 0;
#if defined(__SSE2__)
    if (simd && scan_blocks(s, n, &i)) return 1;
#else
    (void)simd;
#endif
    return scan_bytes(s, i, n);
}

static PyObject *scan_with(PyObject *body, int simd) {
    if (!PyBytes_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes bytes");
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(body);
    return PyBool_FromLong(cx_scan(s, (size_t)PyBytes_GET_SIZE(body), simd));
}

static PyObject *scan(PyObject *self, PyObject *body) {
    (void)self;
    return scan_with(body, 1);
}

static PyObject *scan_bytewise(PyObject *self, PyObject *body) {
    (void)self;
    return scan_with(body, 0);
}

/* The identifier field names, each followed by a NUL byte. */
static PyObject *set_identifiers(PyObject *self, PyObject *names) {
    (void)self;
    if (!PyBytes_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "set_identifiers() takes bytes");
        return NULL;
    }
    Py_ssize_t len = PyBytes_GET_SIZE(names);
    if ((size_t)len >= sizeof identifiers) {
        PyErr_SetString(PyExc_ValueError, "too many identifier names");
        return NULL;
    }
    memcpy(identifiers, PyBytes_AS_STRING(names), (size_t)len);
    identifiers_len = (size_t)len;
    Py_RETURN_NONE;
}

/* The decimal digits outside ASCII: inclusive ranges of code points, each two native
 * 32-bit integers, in increasing order. */
static PyObject *set_digits(PyObject *self, PyObject *ranges) {
    (void)self;
    if (!PyBytes_Check(ranges)) {
        PyErr_SetString(PyExc_TypeError, "set_digits() takes bytes");
        return NULL;
    }
    size_t len = (size_t)PyBytes_GET_SIZE(ranges);
    if (len % sizeof digit_ranges[0] || len > sizeof digit_ranges) {
        PyErr_SetString(PyExc_ValueError, "digit ranges: pairs of 32-bit integers, 512 at most");
        return NULL;
    }
    memcpy(digit_ranges, PyBytes_AS_STRING(ranges), len);
    digit_range_count = len / sizeof digit_ranges[0];
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O, "True when the body may hold something to mask."},
    {"scan_bytewise", scan_bytewise, METH_O, "scan, a byte a step (tests)."},
    {"set_identifiers", set_identifiers, METH_O, "The identifier names, NUL-terminated."},
    {"set_digits", set_digits, METH_O, "The non-ASCII decimal digits' code point ranges."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cardscan", "The card-number pre-scan (cardscan.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cardscan(void) { return PyModule_Create(&module); }
