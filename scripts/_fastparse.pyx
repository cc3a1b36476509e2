# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The compiled fast path of `scripts.parse`: common posts read straight from lexbor's tree.

`scripts/parse.py` is the reference: it reads the tree through selectolax's Python API,
which costs a Python object and a call per node and attribute. This module walks the
same tree (the one selectolax built) through lexbor's C structures, and handles the
posts that make up nearly every channel: text, photos, videos and GIFs, documents and
audio, link previews, forwards, replies, reactions and the notices. For anything rarer
(service messages, polls, stickers, voice, round videos, locations, contacts, unknown
markup, error blocks) `parse_post` returns None and parse.py parses the post itself.

Both paths must give identical records: tests/test_parse_fast.py compares them on every
real capture and fixture. At import, `ready()` checks the struct layout against
selectolax on a sample post; if anything disagrees (another selectolax or lexbor),
parse.py does not use this module.

What it relies on from selectolax 1.0 (pinned in requirements.txt):
- `LexborNode.mem_id` is the address of the lexbor node (lxb_dom_node_t);
- the leading fields of lxb_dom_node_t and lxb_dom_character_data_t, as declared below
  (also declared by selectolax's own lexbor.pxd);
- four exported lexbor functions, looked up by name in selectolax's extension module.
"""

from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp, memcpy



cdef inline const unsigned char *memmem(const void *haystack, size_t length, const void *needle, size_t nl):
    """memmem for the short attributes searched here: glibc's costs more to set up than to run."""
    cdef const unsigned char *h = <const unsigned char *> haystack
    cdef const unsigned char *n = <const unsigned char *> needle
    cdef const unsigned char *end = h + length
    cdef const unsigned char *hit
    if nl == 0:
        return h
    while <size_t> (end - h) >= nl:
        hit = <const unsigned char *> memchr(h, n[0], (end - h) - nl + 1)
        if hit == NULL:
            return NULL
        if memcmp(hit + 1, n + 1, nl - 1) == 0:
            return hit
        h = hit + 1
    return NULL
from libc.stdint cimport uintptr_t
from cpython.object cimport PyObject, PyTypeObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8

import ctypes

import selectolax.lexbor as _selectolax

from scripts.model import Link, Media, Post, Reaction

# Bound by ready(): this module is imported by scripts.parse, so it cannot import it.
P = None
# What the hot code uses of scripts.parse, bound once by ready() (a module attribute
# lookup costs more than much of the work around it).
cdef object P_absolute_url
cdef object P_tme_target
cdef object P_TME
cdef object P_clean_text
cdef object P_media_size
cdef object P_LINK_REL
cdef object P_tidy_text
cdef object P_search_target
cdef object P_sanitise_html
cdef object P_part_roles
cdef object P_parse_duration
cdef object P_parse_count
cdef object P_normalise_date
cdef object P_media_class
cdef object P_link_domain
cdef object P_escape_attribute
cdef object P_decode_data_view
cdef object P_count_value
cdef object P_SAFE_SCHEMES
cdef object P_Channel
cdef dict P_NOTICE_FLAGS
cdef object P_ws_newline_sub, P_reaction_count_search, P_bg_url_search
cdef frozenset KNOWN_NOTICES_AND_SERVICE = frozenset()


cdef extern from *:
    """
    typedef struct fp_str_s { unsigned char *data; size_t length; } fp_str_t;
    typedef struct fp_node_s fp_node_t;
    struct fp_node_s {
        void *event_target;
        uintptr_t local_name;
        uintptr_t prefix;
        uintptr_t ns;
        void *owner_document;
        fp_node_t *next;
        fp_node_t *prev;
        fp_node_t *parent;
        fp_node_t *first_child;
        fp_node_t *last_child;
        void *user;
        int type;
    };
    typedef struct { fp_node_t node; fp_str_t data; } fp_chardata_t;
    typedef const unsigned char *(*fp_name_fn)(void *element, size_t *len);
    typedef const unsigned char *(*fp_attr_fn)(void *element, const unsigned char *name,
                                               size_t name_len, size_t *len);
    typedef unsigned char (*fp_has_fn)(void *element, const unsigned char *name, size_t name_len);
    """
    ctypedef struct fp_str_t:
        unsigned char *data
        size_t length
    ctypedef struct fp_node_t:
        uintptr_t local_name
        fp_node_t *next
        fp_node_t *parent
        fp_node_t *first_child
        int type
    ctypedef struct fp_chardata_t:
        fp_node_t node
        fp_str_t data
    ctypedef const unsigned char *(*fp_name_fn)(void *element, size_t *len)
    ctypedef const unsigned char *(*fp_attr_fn)(void *element, const unsigned char *name,
                                               size_t name_len, size_t *len)
    ctypedef unsigned char (*fp_has_fn)(void *element, const unsigned char *name, size_t name_len)

cdef enum:
    ELEMENT = 1
    TEXT = 3
    COMMENT = 8

cdef fp_name_fn class_of = NULL      # lxb_dom_element_class_noi
cdef fp_name_fn local_name_of = NULL  # lxb_dom_element_local_name
cdef fp_attr_fn get_attribute = NULL  # lxb_dom_element_get_attribute
cdef fp_has_fn has_attribute = NULL   # lxb_dom_element_has_attribute


def _bind_lexbor():
    global class_of, local_name_of, get_attribute, has_attribute
    # The extension module is already loaded; CDLL returns the same handle.
    library = ctypes.CDLL(_selectolax.__file__)
    address = lambda name: ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    class_of = <fp_name_fn> <size_t> address("lxb_dom_element_class_noi")
    local_name_of = <fp_name_fn> <size_t> address("lxb_dom_element_local_name")
    get_attribute = <fp_attr_fn> <size_t> address("lxb_dom_element_get_attribute")
    has_attribute = <fp_has_fn> <size_t> address("lxb_dom_element_has_attribute")


# Tag ids are lexbor constants; learnt from a parsed sample rather than hard-coded.
cdef uintptr_t T_A, T_BR, T_I, T_SPAN, T_TIME, T_VIDEO, T_PRE, T_LINK, T_IMG
# What RichText does with an element, by tag id (standard tags have small ids; custom
# elements such as tg-emoji get large ones and are looked at by name).
cdef enum:
    TAG_TABLE_SIZE = 1024
    KEEP_CONTENT = 0
    SKIP = 1
    LINE_BREAK = 2
    LINK = 3
    ITALIC = 4
    SPAN = 5
    FORMAT = 8  # FORMAT + k: the k-th tag of FORMAT_TAGS
cdef unsigned char TAG_ROLE[TAG_TABLE_SIZE]
cdef list FORMAT_OPEN = []   # "<b>", ... in the order of FORMAT_TAGS
cdef list FORMAT_CLOSE = []
cdef int ITALIC_FORMAT = 0  # the index of "i" in FORMAT_TAGS


cdef inline fp_node_t *as_node(size_t address):
    return <fp_node_t *> address


cdef inline fp_node_t *following(fp_node_t *node, fp_node_t *root):
    """The next node of root's subtree in document order, NULL at the end."""
    if node.first_child != NULL:
        return node.first_child
    return skipping(node, root)


cdef inline fp_node_t *skipping(fp_node_t *node, fp_node_t *root):
    """The next node after node's own subtree, within root's subtree."""
    while node != root and node.next == NULL:
        node = node.parent
        if node == NULL:
            return NULL
    if node == root:
        return NULL
    return node.next


cdef inline bint is_space(unsigned char c):
    # str.split()'s ASCII whitespace
    return c == 32 or (9 <= c <= 13) or (28 <= c <= 31)


cdef bint token_in(const unsigned char *data, size_t length, bytes token):
    """token is one of the whitespace-separated words of data (a class attribute).

    Found with memmem, then checked at both ends; a non-ASCII byte next to it (perhaps a
    Unicode space, which str.split() also splits on) leaves the answer to Python."""
    cdef const unsigned char *t = token
    cdef size_t tl = len(token), at = 0, end
    cdef const unsigned char *hit
    while at + tl <= length:
        hit = <const unsigned char *> memmem(data + at, length - at, t, tl)
        if hit == NULL:
            return False
        end = (hit - data) + tl
        if (hit > data and hit[-1] >= 128) or (end < length and data[end] >= 128):
            return token.decode() in PyUnicode_DecodeUTF8(<char *> data, length, "replace").split()
        if (hit == data or is_space(hit[-1])) and (end == length or is_space(data[end])):
            return True
        at = (hit - data) + 1
    return False


cdef inline const unsigned char *class_attribute(fp_node_t *node, size_t *length):
    """The class attribute's bytes, NULL for a node that is not an element or has none."""
    length[0] = 0
    return class_of(node, length) if node.type == ELEMENT else NULL


cdef bint has_class(fp_node_t *node, bytes token):
    cdef size_t length
    cdef const unsigned char *data = class_attribute(node, &length)
    return data != NULL and token_in(data, length, token)


cdef bint has_any_class(fp_node_t *node, tuple tokens):
    cdef size_t length
    cdef const unsigned char *data = class_attribute(node, &length)
    if data != NULL:
        for token in tokens:
            if token_in(data, length, token):
                return True
    return False


cdef str attribute(fp_node_t *node, bytes name):
    """node.attributes.get(name): None when absent (or without a value)."""
    cdef size_t length = 0
    cdef const unsigned char *value
    if node == NULL or node.type != ELEMENT:
        return None
    value = get_attribute(node, name, len(name), &length)
    if value == NULL:
        return None
    return PyUnicode_DecodeUTF8(<char *> value, length, "replace")


cdef bint is_named(fp_node_t *node, bytes name):
    """Element name check for custom elements (tg-emoji, tg-spoiler), whose ids are not constants."""
    cdef size_t length = 0
    cdef const unsigned char *value = local_name_of(node, &length)
    return value != NULL and length == len(name) and memcmp(value, <const unsigned char *> name, length) == 0


cdef str node_text(fp_node_t *node):
    """selectolax's node.text(): every text node of the subtree, concatenated."""
    cdef fp_node_t *current = node
    cdef fp_node_t *only = NULL
    cdef fp_chardata_t *chars
    cdef list pieces
    while current != NULL:  # the usual case first: a single text node (a glyph, a number)
        if current.type == TEXT:
            if only != NULL:
                break
            only = current
        current = following(current, node)
    if current == NULL:
        return text_of(only) if only != NULL else ""
    pieces = []
    current = node
    while current != NULL:
        if current.type == TEXT:
            chars = <fp_chardata_t *> current
            if chars.data.data != NULL:
                pieces.append(PyUnicode_DecodeUTF8(<char *> chars.data.data, chars.data.length, "replace"))
        current = following(current, node)
    if len(pieces) == 1:
        return pieces[0]
    return "".join(pieces)


cdef inline str text_of(fp_node_t *node):
    cdef fp_chardata_t *chars = <fp_chardata_t *> node
    if chars.data.data == NULL:
        return ""
    return PyUnicode_DecodeUTF8(<char *> chars.data.data, chars.data.length, "replace")


cdef inline fp_node_t *first_with_class(fp_node_t *root, bytes token):
    """root.css_first("." + token): root itself included, document order."""
    return first_with_any_class(root, (token,))


cdef fp_node_t *first_with_any_class(fp_node_t *root, tuple tokens):
    cdef fp_node_t *node = root
    while node != NULL:
        if has_any_class(node, tokens):
            return node
        node = following(node, root)
    return NULL


cdef fp_node_t *inside(fp_node_t *node, fp_node_t *stop, tuple tokens):
    """The nearest ancestor of node below stop with one of the classes (parse.inside)."""
    cdef fp_node_t *parent = node.parent
    while parent != NULL and parent != stop:
        if has_any_class(parent, tokens):
            return parent
        parent = parent.parent
    return NULL


cdef str first_text(fp_node_t *root, bytes token):
    cdef fp_node_t *found = first_with_class(root, token)
    return P_clean_text(node_text(found)) if found != NULL else None


cdef inline size_t skip_spaces(const unsigned char *data, size_t i, size_t length):
    while i < length and is_space(data[i]):
        i += 1
    return i


cdef str background_url(fp_node_t *node):
    """parse.background_url: the url() of background-image in the style attribute.

    The usual `background-image:url('...')` is read here; any other spelling goes to
    parse.py's regular expression, so that both always agree."""
    cdef size_t length = 0, i, start
    cdef const unsigned char *data
    cdef const unsigned char *found
    if node == NULL:
        return None
    data = get_attribute(node, b"style", 5, &length)
    if data == NULL:
        return None
    found = <const unsigned char *> memmem(data, length, b"background-image", 16)
    if found == NULL:
        return None
    i = skip_spaces(data, found - data + 16, length)
    if i < length and data[i] == ord(":"):
        i = skip_spaces(data, i + 1, length)
        if i + 4 <= length and memcmp(data + i, b"url(", 4) == 0:
            i = skip_spaces(data, i + 4, length)
            if i < length and (data[i] == ord("'") or data[i] == ord('"')):
                i += 1
            start = i
            while i < length and data[i] != ord("'") and data[i] != ord('"') and data[i] != ord(")"):
                i += 1
            if i > start and data[start] < 128 and not is_space(data[start]):
                if data[start] != ord("/") and data[i - 1] < 128 and not is_space(data[i - 1]):
                    return PyUnicode_DecodeUTF8(<char *> data + start, i - start, "replace")  # already absolute
                return P_absolute_url(PyUnicode_DecodeUTF8(<char *> data + start, i - start, "replace").strip())
    match = P_bg_url_search(attribute(node, b"style") or "")
    return P_absolute_url(match.group(1).strip()) if match else None


# ---------------------------------------------------------------- rich text


cdef inline bint has_newline(fp_node_t *node):
    cdef fp_chardata_t *chars = <fp_chardata_t *> node
    return chars.data.data != NULL and memchr(chars.data.data, 10, chars.data.length) != NULL


cdef str tidy_text(str text):
    """parse.tidy_text."""
    if "\x00" in text:
        return P_tidy_text(text)
    text = text.strip()
    return text or None


cdef str link_tag(str href):
    """parse.link_tag."""
    scheme = href.split(":", 1)[0].lower() if ":" in href else ""
    if scheme in P_SAFE_SCHEMES:
        if "&" in href or '"' in href or "\u00a0" in href:
            href = P_escape_attribute(href)
        return f'<a href="{href}" rel="{P_LINK_REL}">'
    return f'<a rel="{P_LINK_REL}">'


cdef struct Buffer:
    char *data
    size_t length
    size_t capacity


cdef int add(Buffer *buffer, const char *data, size_t length) except -1:
    cdef size_t capacity
    cdef char *grown
    if buffer.length + length > buffer.capacity:
        capacity = max(buffer.capacity * 2, buffer.length + length, 512)
        grown = <char *> realloc(buffer.data, capacity)
        if grown == NULL:
            raise MemoryError()
        buffer.data, buffer.capacity = grown, capacity
    memcpy(buffer.data + buffer.length, data, length)
    buffer.length += length
    return 0


cdef int add_str(Buffer *buffer, str value) except -1:
    cdef Py_ssize_t length
    cdef const char *data = PyUnicode_AsUTF8AndSize(value, &length)
    return add(buffer, data, length)


cdef unsigned char ESCAPED[256]  # the bytes add_escaped stops at: & < > and 0xC2 (of U+00A0)
ESCAPED[38] = ESCAPED[60] = ESCAPED[62] = ESCAPED[0xC2] = 1


cdef int add_escaped(Buffer *buffer, const unsigned char *data, size_t length) except -1:
    """parse.escape_text on UTF-8 bytes: & < > and no-break spaces become entities."""
    cdef size_t i = 0, start = 0
    cdef unsigned char c
    while True:
        while i < length and not ESCAPED[data[i]]:
            i += 1
        if i >= length:
            break
        c = data[i]
        if c == 0xC2 and not (i + 1 < length and data[i + 1] == 0xA0):
            i += 1  # another character of U+0080..U+00BF
            continue
        add(buffer, <const char *> data + start, i - start)
        if c == 38:
            add(buffer, "&amp;", 5)
        elif c == 60:
            add(buffer, "&lt;", 4)
        elif c == 62:
            add(buffer, "&gt;", 4)
        else:
            add(buffer, "&nbsp;", 6)
            i += 1
        i += 1
        start = i
    return add(buffer, <const char *> data + start, length - start)


cdef bint valid_utf8(const unsigned char *s, size_t n):
    """What CPython's UTF-8 decoder accepts (no overlongs, surrogates or values past U+10FFFF)."""
    cdef size_t i = 0
    cdef unsigned char c
    cdef unsigned long long word
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
            while i + 8 <= n:  # the ASCII that follows, eight bytes at a time
                memcpy(&word, s + i, 8)
                if word & 0x8080808080808080ULL:
                    break
                i += 8
        elif 0xC2 <= c <= 0xDF:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if i + 2 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return False
            if (c == 0xE0 and s[i + 1] < 0xA0) or (c == 0xED and s[i + 1] > 0x9F):
                return False
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if i + 3 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80 \
                    or (s[i + 3] & 0xC0) != 0x80:
                return False
            if (c == 0xF0 and s[i + 1] < 0x90) or (c == 0xF4 and s[i + 1] > 0x8F):
                return False
            i += 4
        else:
            return False
    return True


cdef class Rich:
    """parse.RichText, over lexbor nodes: plain text and safe HTML are built as UTF-8
    bytes and decoded once, instead of a Python string per text node."""
    cdef Buffer text, html
    cdef list links
    cdef str base_url
    cdef bint in_link

    def __cinit__(self, str base_url):
        self.base_url = base_url
        self.links = []
        self.in_link = False

    def __dealloc__(self):
        free(self.text.data)
        free(self.html.data)

    cdef int add_text(self, str value) except -1:
        """A piece of text parse.py would append as a string (text and escaped HTML)."""
        cdef Py_ssize_t length
        cdef const char *data = PyUnicode_AsUTF8AndSize(value, &length)
        add(&self.text, data, length)
        return add_escaped(&self.html, <const unsigned char *> data, length)

    cdef int walk(self, fp_node_t *node, bint in_pre) except -1:
        cdef fp_node_t *child = node.first_child
        cdef fp_chardata_t *chars
        cdef uintptr_t tag
        cdef int role
        cdef str value
        cdef const char *data
        cdef Py_ssize_t length
        while child != NULL:
            if child.type == TEXT:
                chars = <fp_chardata_t *> child
                if chars.data.data == NULL:
                    pass
                elif not in_pre and has_newline(child):
                    # a raw newline (re-indented copies): parse.py's whitespace markers
                    value = P_ws_newline_sub("\x00", text_of(child))
                    add_str(&self.text, value)
                    value = value.replace("\x00", " ")
                    data = PyUnicode_AsUTF8AndSize(value, &length)
                    add_escaped(&self.html, <const unsigned char *> data, length)
                elif valid_utf8(chars.data.data, chars.data.length):
                    add(&self.text, <const char *> chars.data.data, chars.data.length)
                    add_escaped(&self.html, chars.data.data, chars.data.length)
                else:  # as parse.py decodes it, node by node
                    self.add_text(text_of(child))
            elif child.type == ELEMENT:
                tag = child.local_name
                role = TAG_ROLE[tag] if tag < TAG_TABLE_SIZE else KEEP_CONTENT
                if role == LINE_BREAK:
                    add(&self.text, "\n", 1)
                    add(&self.html, "<br>", 4)
                elif role == SKIP:
                    pass
                elif role == LINK:
                    self.visit_link(child, in_pre)
                elif role == ITALIC:
                    if has_class(child, b"emoji"):  # an image emoji: keep just its glyph
                        self.add_text(node_text(child).strip())
                    else:
                        self.element(child, ITALIC_FORMAT, in_pre)
                elif role == SPAN:
                    if has_class(child, b"tg-spoiler"):
                        self.spoiler(child, in_pre)
                    else:
                        self.walk(child, in_pre)
                elif role >= FORMAT:
                    self.element(child, role - FORMAT, in_pre or tag == T_PRE)
                elif tag >= TAG_TABLE_SIZE and is_named(child, b"tg-spoiler"):
                    self.spoiler(child, in_pre)
                else:  # div, tg-emoji...: keep the content, drop the element
                    self.walk(child, in_pre)
            elif child.type != COMMENT:  # not a comment: doctype, CDATA... keep what they hold
                self.walk(child, in_pre)
            child = child.next
        return 0

    cdef int element(self, fp_node_t *node, int format, bint in_pre) except -1:
        cdef bytes opening = FORMAT_OPEN[format], closing = FORMAT_CLOSE[format]
        add(&self.html, opening, len(opening))
        self.walk(node, in_pre)
        add(&self.html, closing, len(closing))
        return 0

    cdef int spoiler(self, fp_node_t *node, bint in_pre) except -1:
        add(&self.html, '<span class="tg-spoiler">', 25)
        self.walk(node, in_pre)
        add(&self.html, "</span>", 7)
        return 0

    cdef int visit_link(self, fp_node_t *node, bint in_pre) except -1:
        cdef str href = (attribute(node, b"href") or "").strip()
        cdef size_t start
        if href.startswith("?"):
            href = self.base_url + href
        elif href.startswith("/"):
            href = P_absolute_url(href)
        start = self.text.length
        if self.in_link:
            self.walk(node, in_pre)
        else:
            self.in_link = True
            add_str(&self.html, link_tag(href))
            self.walk(node, in_pre)
            add(&self.html, "</a>", 4)
            self.in_link = False
        if href:
            words = PyUnicode_DecodeUTF8(self.text.data + start, self.text.length - start, "strict")
            self.links.append((href, tidy_text(words) or ""))
        return 0

    cdef str plain(self):
        return tidy_text(PyUnicode_DecodeUTF8(self.text.data, self.text.length, "strict"))

    cdef str safe_html(self):
        html = PyUnicode_DecodeUTF8(self.html.data, self.html.length, "strict").strip()
        return html or None


cdef Rich rich_text(fp_node_t *node, str base_url):
    cdef Rich rich = Rich(base_url)
    rich.walk(node, False)
    return rich


cdef str plain_text(fp_node_t *node):
    cdef fp_node_t *child
    if node == NULL:
        return None
    child = node.first_child
    if child == NULL:
        return None
    if child.next == NULL and child.type == TEXT and not has_newline(child):
        return tidy_text(text_of(child))  # a name, a title: one line of text, no markup
    return rich_text(node, P_TME).plain()


# ---------------------------------------------------------------- media


cdef inline bint is_name_char(unsigned char c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95


cdef object item_message_id(fp_node_t *node):
    """parse.tme_target(href)[1]: the post id of a https://t.me/<channel>/<id> link."""
    cdef size_t length = 0, i = 0, start
    cdef const unsigned char *data = get_attribute(node, b"href", 4, &length)
    if data == NULL:
        return None
    # The usual form, https://t.me/<name>/<digits> with nothing else, is read here.
    if length > 13 and memcmp(data, b"https://t.me/", 13) == 0:
        i = 13
        start = i
        while i < length and is_name_char(data[i]):
            i += 1
        if i > start and not (i - start == 1 and data[start] == ord("s")) and i < length and data[i] == ord("/"):
            i += 1
            start = i
            while i < length and 48 <= data[i] <= 57:
                i += 1
            if i > start:  # what follows the digits ("?single") does not matter
                return int((<char *> data)[start:i])
    return P_tme_target(attribute(node, b"href"))[1]


cdef bint find_declaration(const unsigned char *d, size_t n, bytes name, bint anchored, bytes unit,
                           size_t *start, size_t *stop):
    """The first `name\\s*:\\s*([\\d.]+)unit` in an ASCII style attribute, as the regular
    expressions of parse.media_size find it; anchored: only at the start or after ";"."""
    cdef const unsigned char *nm = name
    cdef const unsigned char *un = unit
    cdef size_t nl = len(name), ul = len(unit), at = 0, i
    cdef const unsigned char *hit
    while at <= n:
        if anchored:
            i = skip_spaces(d, at, n)
        else:
            hit = <const unsigned char *> memmem(d + at, n - at, nm, nl)
            if hit == NULL:
                return False
            i = hit - d
        if i + nl <= n and memcmp(d + i, nm, nl) == 0:
            i = skip_spaces(d, i + nl, n)
            if i < n and d[i] == ord(":"):
                i = skip_spaces(d, i + 1, n)
                start[0] = i
                while i < n and (48 <= d[i] <= 57 or d[i] == ord(".")):
                    i += 1
                if i > start[0] and i + ul <= n and memcmp(d + i, un, ul) == 0:
                    stop[0] = i
                    return True
        if anchored:  # the next declaration
            hit = <const unsigned char *> memchr(d + at, ord(";"), n - at)
            if hit == NULL:
                return False
            at = hit - d + 1
        else:
            at = (hit - d) + 1
    return False


cdef tuple media_size(fp_node_t *wrap, fp_node_t *inner):
    """parse.media_size(wrap style, inner style), read in C when both styles are ASCII."""
    cdef size_t wl = 0, il = 0, a, b, i
    cdef const unsigned char *w = get_attribute(wrap, b"style", 5, &wl) if wrap != NULL else NULL
    cdef const unsigned char *n = get_attribute(inner, b"style", 5, &il) if inner != NULL else NULL
    cdef object width, height  # Python floats and Python's round(), as in parse.media_size
    if w == NULL:
        w, wl = b"", 0
    if n == NULL:
        n, il = b"", 0
    for i in range(wl):
        if w[i] >= 128:
            return P_media_size(attribute(wrap, b"style") or "", (attribute(inner, b"style") or "") if inner != NULL else "")
    for i in range(il):
        if n[i] >= 128:
            return P_media_size(attribute(wrap, b"style") or "", (attribute(inner, b"style") or "") if inner != NULL else "")
    if not find_declaration(w, wl, b"width", True, b"px", &a, &b):
        return None, None
    width = float((<char *> w)[a:b])
    if find_declaration(n, il, b"width", True, b"%", &a, &b):
        width = width * float((<char *> n)[a:b]) / 100
    if find_declaration(n, il, b"padding-top", False, b"%", &a, &b):
        height = round(width * float((<char *> n)[a:b]) / 100)
    elif find_declaration(w, wl, b"padding-top", False, b"%", &a, &b):
        height = round(width * float((<char *> w)[a:b]) / 100)
    else:
        height = None
    return round(width), height


cdef object parse_photo(fp_node_t *node):
    cdef fp_node_t *inner
    media = new_media({"kind": "photo", "url": background_url(node), "message_id": item_message_id(node)})
    if not has_class(node, b"grouped_media_wrap"):
        inner = first_with_class(node, b"tgme_widget_message_photo")
        media.width, media.height = media_size(node, inner)
    return media


cdef object parse_video(fp_node_t *node):
    cdef fp_node_t *wrap = first_with_class(node, b"tgme_widget_message_video_wrap")
    cdef fp_node_t *video = NULL
    cdef fp_node_t *current = node
    while current != NULL:
        if current.type == ELEMENT and current.local_name == T_VIDEO and not has_class(current, b"blured"):
            video = current  # the blurred copy is only a backdrop
            break
        current = following(current, node)
    is_gif = video != NULL and has_attribute(video, b"loop", 4)
    duration = first_text(node, b"message_video_duration")
    media = new_media({
        "kind": "gif" if is_gif else "video",
        "message_id": item_message_id(node),
        "url": P_absolute_url(attribute(video, b"src")) if video != NULL else None,
        "thumbnail_url": background_url(first_with_class(node, b"tgme_widget_message_video_thumb")),
        "duration_text": duration,
        "duration_seconds": P_parse_duration(duration),
    })
    if wrap != NULL and not has_class(node, b"grouped_media_wrap"):
        media.width, media.height = media_size(wrap, wrap)
    return media


cdef object parse_document(fp_node_t *node):
    cdef fp_node_t *icon = first_with_class(node, b"tgme_widget_message_document_icon")
    is_audio = icon != NULL and has_class(icon, b"audio")
    title = first_text(node, b"tgme_widget_message_document_title")
    extra = first_text(node, b"tgme_widget_message_document_extra")
    media = new_media({"kind": "audio" if is_audio else "document", "title": title,
                       "message_id": item_message_id(node)})
    if is_audio:
        media.performer = extra
    else:
        media.size_text = extra
    return media


# Media kinds handled here; a post with any other kind goes to parse.py.
cdef dict MEDIA_KIND = {
    "tgme_widget_message_photo_wrap": 1,
    "tgme_widget_message_video_player": 2,
    "tgme_widget_message_document_wrap": 3,
}

cdef tuple REPLY_OR_PREVIEW = (b"tgme_widget_message_reply", b"tgme_widget_message_link_preview")
cdef tuple NOTICE_HOLDERS = (b"media_not_supported_cont", b"tgme_widget_message_video_player",
                             b"tgme_widget_message_roundvideo_player")


cdef str notice_of(fp_node_t *node):
    cdef fp_node_t *label = first_with_class(node, b"message_media_not_supported_label")
    if label == NULL:
        return None
    return P_NOTICE_FLAGS.get(" ".join(node_text(label).split()).lower())


cdef object media_from_nodes(fp_node_t *scope, list nodes):
    """parse.media_from_nodes; None when a media kind is not handled here."""
    cdef fp_node_t *node
    cdef int which
    cdef size_t length = 0
    cdef const unsigned char *data
    items = []
    for address in nodes:
        node = as_node(address)
        if inside(node, scope, REPLY_OR_PREVIEW) != NULL:
            continue
        data = class_attribute(node, &length)
        kind, not_supported = remembered(MEDIA_CLASSES, data, length, P_media_class) if data != NULL \
            else P_media_class("")
        which = MEDIA_KIND.get(kind, 0)
        if which == 1:
            media = parse_photo(node)
        elif which == 2:
            media = parse_video(node)
        elif which == 3:
            media = parse_document(node)
        else:
            return None
        media.position = len(items)
        if not_supported and notice_of(node) == "media_too_big":
            media.too_big = True
        items.append(media)
    return items


# ---------------------------------------------------------------- post parts


cdef tuple count_of(str text):
    """parse.parse_count as (text, value, precision), without the Count object."""
    raw = text.strip()
    if raw.isdigit() and raw.isascii():
        return raw, int(raw), 0
    return (raw,) + P_count_value(raw)


cdef object parse_reactions(fp_node_t *root):
    cdef fp_node_t *chip = root
    cdef fp_node_t *child
    reactions = []
    while chip != NULL:
        if not has_class(chip, b"tgme_reaction"):
            chip = following(chip, root)
            continue
        emoji = custom_id = None
        count_text = ""
        child = chip.first_child
        while child != NULL:
            if child.type == TEXT:
                count_text += text_of(child)
            elif child.type == ELEMENT:
                if child.local_name == T_I and has_class(child, b"emoji"):
                    emoji = node_text(child).strip() or None
                elif is_named(child, b"tg-emoji"):
                    custom_id = attribute(child, b"emoji-id")
                    glyph = node_text(child).strip()
                    emoji = glyph or emoji
            child = child.next
        count_text = count_text.strip()
        paid = has_class(chip, b"tgme_reaction_paid")
        if emoji is None and custom_id is None and not paid:
            m = P_reaction_count_search(count_text)
            emoji = count_text[: m.start()].strip() if m else count_text or None
            count_text = m.group(1).strip() if m else ""
        count_text, value, precision = count_of(count_text)
        reactions.append(new_reaction({
            "position": len(reactions),
            "emoji": emoji or None,
            "custom_emoji_id": custom_id,
            "count": value,
            "count_text": count_text,
            "count_precision": precision,
            "paid": paid,
        }))
        chip = following(chip, root)
    return reactions


cdef bytes PART_MARK = b"tgme_widget_message_"
cdef tuple LIST_CLASSES = ("tgme_widget_message_text", "message_media_not_supported_label")  # parse.LIST_CLASSES


cdef inline bint contains(const unsigned char *data, size_t length, bytes needle):
    return memmem(data, length, <const unsigned char *> needle, len(needle)) != NULL


cdef dict ROLES = {}  # FNV-1a hash of a class attribute's bytes -> (those bytes, parse.part_roles)
cdef dict MEDIA_CLASSES = {}  # the same for parse.media_class


cdef inline unsigned long long class_hash(const unsigned char *data, size_t length):
    """A quick hash of a class attribute's bytes, eight at a time."""
    cdef unsigned long long h = 14695981039346656037ULL ^ length, word
    cdef size_t i = 0
    while i + 8 <= length:
        memcpy(&word, data + i, 8)
        h = (h ^ word) * 1099511628211ULL
        h ^= h >> 29
        i += 8
    while i < length:
        h = (h ^ data[i]) * 1099511628211ULL
        i += 1
    return h ^ (h >> 32)


cdef tuple remembered(dict cache, const unsigned char *data, size_t length, function):
    """function(the attribute decoded), remembered by its bytes: the same few class
    attributes repeat on every post, and this skips decoding them each time."""
    cdef unsigned long long h = class_hash(data, length)
    cdef bytes raw
    entry = cache.get(h)
    if entry is not None:
        raw = <bytes> (<tuple> entry)[0]
        if <size_t> len(raw) == length and memcmp(<const unsigned char *> raw, data, length) == 0:
            return (<tuple> entry)[1]
    raw = (<char *> data)[:length]
    value = function(raw.decode("utf-8", "replace"))
    if len(cache) < 4096:
        cache[h] = (raw, value)
    return value


cdef inline tuple roles_of(const unsigned char *data, size_t length):
    return remembered(ROLES, data, length, P_part_roles)


cdef dict new_parts():
    return {"tgme_widget_message_text": [], "message_media_not_supported_label": [], "media": [], "unknown": []}


cdef inline int add_part(dict parts, fp_node_t *node, const unsigned char *data, size_t length) except -1:
    """One element's share of parse.post_parts (data: its class attribute)."""
    if not (
        contains(data, length, PART_MARK)
        or contains(data, length, b"media_") and (
            token_in(data, length, b"media_supported_cont")
            or token_in(data, length, b"message_media_not_supported_label")
        )
    ):
        return 0
    roles, is_media, unknown = roles_of(data, length)
    address = <size_t> node
    for name in roles:
        if name in LIST_CLASSES:
            parts[name].append(address)
        elif name not in parts:
            parts[name] = address
    if is_media:
        parts["media"].append(address)
    if unknown:
        parts["unknown"].append(address)
    return 0


cdef dict post_parts(fp_node_t *message):
    """parse.post_parts, with node addresses: one walk instead of one CSS query."""
    cdef fp_node_t *node = message
    cdef size_t length
    cdef const unsigned char *data
    parts = new_parts()
    while node != NULL:
        data = class_attribute(node, &length)
        if data != NULL:
            add_part(parts, node, data, length)
        node = following(node, message)
    return parts


cdef set visible_notices(fp_node_t *message, list labels, bint has_supported):
    cdef fp_node_t *label
    cdef fp_node_t *holder
    found = set()
    for address in labels:
        label = as_node(address)
        text = " ".join(node_text(label).split()).lower()
        holder = inside(label, message, NOTICE_HOLDERS)
        if holder != NULL:
            is_fallback = has_class(holder, b"media_not_supported_cont")
            if is_fallback and has_supported:
                continue
            if not is_fallback and not has_class(holder, b"not_supported"):
                continue
        found.add(P_NOTICE_FLAGS.get(text, "service" if text == "service message" else text))
    return found


cdef fp_node_t *main_text_node(fp_node_t *message, list candidates):
    cdef fp_node_t *node
    cdef fp_node_t *inner
    for address in candidates:
        node = as_node(address)
        if has_class(node, b"js-message_reply_text"):
            continue
        if inside(node, message, REPLY_OR_PREVIEW) != NULL:
            continue
        inner = first_with_class(node, b"tgme_widget_message_text")
        return inner if inner != NULL else node
    return NULL


cdef fp_node_t *first_time(fp_node_t *date_link):
    cdef fp_node_t *node = date_link
    while node != NULL:
        if node.type == ELEMENT and node.local_name == T_TIME and has_attribute(node, b"datetime", 8):
            return node
        node = following(node, date_link)
    return NULL


cdef inline int two_digits(const unsigned char *d):
    if 48 <= d[0] <= 57 and 48 <= d[1] <= 57:
        return (d[0] - 48) * 10 + d[1] - 48
    return -1


cdef str utc_date(fp_node_t *time):
    """parse.normalise_date of the datetime attribute. t.me writes UTC as
    "2026-01-02T03:04:05+00:00", which is already the form we keep: checked here;
    anything else goes to normalise_date."""
    cdef size_t length = 0
    cdef const unsigned char *d = get_attribute(time, b"datetime", 8, &length)
    cdef int year_hi, year_lo, year, month, day, last
    if d != NULL and length == 25 and memcmp(d + 19, b"+00:00", 6) == 0 and d[4] == 45 and d[7] == 45 \
            and d[10] == 84 and d[13] == 58 and d[16] == 58:
        year_hi, year_lo = two_digits(d), two_digits(d + 2)
        month, day = two_digits(d + 5), two_digits(d + 8)
        if year_hi >= 0 and year_lo >= 0 and 1 <= month <= 12 and day >= 1:
            year = year_hi * 100 + year_lo
            last = DAYS_IN_MONTH[month - 1]
            if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
                last = 29
            if year >= 1 and day <= last and 0 <= two_digits(d + 11) <= 23 \
                    and 0 <= two_digits(d + 14) <= 59 and 0 <= two_digits(d + 17) <= 59:
                return PyUnicode_DecodeUTF8(<char *> d, length, "strict")
    return P_normalise_date(attribute(time, b"datetime"))


cdef int DAYS_IN_MONTH[12]
DAYS_IN_MONTH[:] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


cdef bint edited_mark(fp_node_t *meta):
    cdef fp_node_t *child
    if meta == NULL:
        return False
    child = meta.first_child
    while child != NULL:
        if child.type == TEXT and "edited" in text_of(child):
            return True
        child = child.next
    return False


cdef inline fp_node_t *part(dict parts, str name):
    address = parts.get(name)
    return as_node(address) if address is not None else NULL


cdef int fill_forward(post, fp_node_t *node) except -1:
    cdef fp_node_t *name = first_with_class(node, b"tgme_widget_message_forwarded_from_name")
    cdef fp_node_t *author
    if name != NULL:
        post.forwarded_from_name = plain_text(name)
        href = attribute(name, b"href")
        if href:
            post.forwarded_from_url = P_absolute_url(href)
            post.forwarded_from_channel, post.forwarded_from_id = P_tme_target(href)
    author = first_with_class(node, b"tgme_widget_message_forwarded_from_author")
    if author != NULL:
        post.forwarded_from_author = plain_text(author)
    return 0


cdef int fill_reply(post, fp_node_t *node) except -1:
    post.reply_to_channel, post.reply_to_id = P_tme_target(attribute(node, b"href"))
    post.reply_to_author = plain_text(first_with_class(node, b"tgme_widget_message_author_name"))
    post.reply_to_text = plain_text(
        first_with_any_class(node, (b"tgme_widget_message_metatext", b"tgme_widget_message_text"))
    )
    return 0


cdef int fill_link_preview(post, fp_node_t *node) except -1:
    post.link_preview_url = P_absolute_url(attribute(node, b"href"))
    post.link_preview_site = plain_text(first_with_class(node, b"link_preview_site_name"))
    post.link_preview_title = plain_text(first_with_class(node, b"link_preview_title"))
    post.link_preview_description = plain_text(first_with_class(node, b"link_preview_description"))
    post.link_preview_image = background_url(first_with_any_class(
        node, (b"link_preview_image", b"link_preview_right_image", b"link_preview_video_thumb")
    ))
    return 0


cdef int fill_text(post, fp_node_t *node) except -1:
    cdef Rich rich = rich_text(node, f"{P_TME}/s/{post.channel}")
    post.text = rich.plain()
    post.html = rich.safe_html()
    hashtags, mentions, links = post.hashtags, post.mentions, post.links
    for href, text in rich.links:
        target = P_search_target(href.split("?q=", 1)[1]) if "?q=" in href else ""
        if target.startswith("#"):
            tag = target[1:] or text.lstrip("#")
            if tag and tag not in hashtags:
                hashtags.append(tag)
            continue
        if text.startswith("@"):
            username = text[1:]
            if username and username not in mentions:
                mentions.append(username)
        links.append(new_link(href, P_link_domain(href), text or None))
    return 0



cdef dict POST_DEFAULTS = {}  # every field of Post: its default (None for the required ones)
cdef tuple POST_LISTS = ()     # the fields whose default is a new list


cdef object new_post(channel, id, url):
    """Post(channel=..., id=..., url=...) without the generated __init__ (a tenth of a
    post's time with 40 fields): the same __dict__, built from a copy of the defaults."""
    values = POST_DEFAULTS.copy()
    values["channel"] = channel
    values["id"] = id
    values["url"] = url
    for name in POST_LISTS:
        values[name] = []
    post = Post.__new__(Post)
    post.__dict__ = values
    return post


cdef object new_link(url, domain, text):
    """Link(url=..., domain=..., text=...) without the generated __init__."""
    link = Link.__new__(Link)
    link.__dict__ = {"url": url, "domain": domain, "text": text}
    return link


cdef dict MEDIA_DEFAULTS = {}


cdef object new_media(dict values):
    """Media(position=0, **values) without the generated __init__."""
    fields = MEDIA_DEFAULTS.copy()
    fields["poll_options"] = []
    fields.update(values)
    media = Media.__new__(Media)
    media.__dict__ = fields
    return media


cdef object new_reaction(dict values):
    """Reaction(**values), every field given in field order, without the generated __init__."""
    reaction = Reaction.__new__(Reaction)
    reaction.__dict__ = values
    return reaction


def _learn_post_defaults():
    global POST_DEFAULTS, POST_LISTS
    import dataclasses

    defaults, lists = {}, []
    for field in dataclasses.fields(Post):
        defaults[field.name] = None
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is list:
            lists.append(field.name)
        elif field.default_factory is not dataclasses.MISSING:
            raise RuntimeError(f"Post.{field.name}: a default factory new_post does not know")
    POST_DEFAULTS, POST_LISTS = defaults, tuple(lists)
    made, reference = new_post("c", 1, "u"), Post(channel="c", id=1, url="u")
    if made != reference or list(vars(made).items()) != list(vars(reference).items()):
        raise RuntimeError("new_post does not make what Post() makes")
    global MEDIA_DEFAULTS
    MEDIA_DEFAULTS = {}
    for field in dataclasses.fields(Media):
        if field.default is not dataclasses.MISSING:
            MEDIA_DEFAULTS[field.name] = field.default
        elif field.name == "position":
            MEDIA_DEFAULTS[field.name] = 0
        elif field.name == "kind" or field.name == "poll_options" and field.default_factory is list:
            MEDIA_DEFAULTS[field.name] = None
        else:
            raise RuntimeError(f"Media.{field.name}: a field new_media does not know")
    made, reference = new_media({"kind": "photo", "url": "u"}), Media(position=0, kind="photo", url="u")
    if made != reference or list(vars(made).items()) != list(vars(reference).items()):
        raise RuntimeError("new_media does not make what Media() makes")
    values = {"position": 0, "emoji": "e", "custom_emoji_id": None, "count": 1, "count_text": "1",
              "count_precision": 0, "paid": False}
    made, reference = new_reaction(dict(values)), Reaction(**values)
    if made != reference or list(vars(made).items()) != list(vars(reference).items()):
        raise RuntimeError("new_reaction does not make what Reaction() makes")
    made, reference = new_link("u", "d", "t"), Link(url="u", domain="d", text="t")
    if made != reference or list(vars(made).items()) != list(vars(reference).items()):
        raise RuntimeError("new_link does not make what Link() makes")


cdef signed char BASE64[256]


cdef void fill_base64_table():
    cdef int i
    cdef const unsigned char *alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for i in range(256):
        BASE64[i] = -1
    for i in range(64):
        BASE64[alphabet[i]] = i
    BASE64[ord("-")] = 62
    BASE64[ord("_")] = 63


fill_base64_table()


cdef dict read_data_view(str value):
    """parse.decode_data_view for what t.me writes: base64url of a flat JSON object of
    integers and plain strings, without spaces. None for anything else (parse.py decides)."""
    cdef bytes encoded
    cdef const unsigned char *src
    cdef unsigned char out[512]
    cdef Py_ssize_t n, i, o = 0, start
    cdef unsigned int acc = 0
    cdef int bits = 0, v
    if not value.isascii():
        return None
    encoded = value.encode("ascii")
    n = len(encoded)
    if n % 4 == 1 or n * 3 // 4 > 500:
        return None
    src = encoded
    for i in range(n):
        v = BASE64[src[i]]
        if v < 0:
            return None
        acc = (acc << 6) | v
        bits += 6
        if bits >= 8:
            bits -= 8
            out[o] = (acc >> bits) & 0xFF
            o += 1
    if o < 2 or out[0] != ord("{") or out[o - 1] != ord("}"):
        return None
    view = {}
    i = 1
    while True:
        if out[i] != ord('"'):
            return None
        start = i + 1
        i = start
        while i < o and out[i] != ord('"'):
            if out[i] == ord("\\") or out[i] < 0x20:
                return None
            i += 1
        if i >= o - 1 or out[i + 1] != ord(":"):
            return None
        key = PyUnicode_DecodeUTF8(<char *> out + start, i - start, "strict")
        i += 2
        if out[i] == ord('"'):
            start = i + 1
            i = start
            while i < o and out[i] != ord('"'):
                if out[i] == ord("\\") or out[i] < 0x20:
                    return None
                i += 1
            if i >= o:
                return None
            view[key] = PyUnicode_DecodeUTF8(<char *> out + start, i - start, "strict")
            i += 1
        else:
            start = i
            if out[i] == ord("-"):
                i += 1
            if not (ord("0") <= out[i] <= ord("9")):
                return None
            if out[i] == ord("0") and ord("0") <= out[i + 1] <= ord("9"):
                return None  # a leading zero is not JSON
            while ord("0") <= out[i] <= ord("9"):
                i += 1
            view[key] = int((<char *> out)[start:i])
        if out[i] == ord(","):
            i += 1
        elif out[i] == ord("}") and i == o - 1:
            return view
        else:
            return None


def parse_post(message, dict parts_of=None):
    """parse.parse_post for a message block (a LexborNode); None: let parse.py do it.

    None covers error blocks, unknown markup, unhandled media kinds,
    unrecognised notices and a missing data-post: everything that is rare or reports a
    problem."""
    cdef fp_node_t *node = as_node(message.mem_id)
    cdef fp_node_t *bubble
    cdef fp_node_t *found
    if has_class(node, b"err_message"):
        return None
    parts = parts_of.get(<size_t> node) if parts_of is not None else None
    if parts is None:
        parts = post_parts(node)
    if "tgme_widget_message_error" in parts:
        return None
    data_post = attribute(node, b"data-post") or ""
    channel, _, id_text = data_post.rpartition("/")
    if not channel or not id_text.isdigit():
        return None

    notices = visible_notices(node, parts["message_media_not_supported_label"], "media_supported_cont" in parts)
    if notices and not notices <= KNOWN_NOTICES_AND_SERVICE:
        return None  # a notice parse.py reports as a problem
    is_service = has_class(node, b"service_message") or "service" in notices
    if parts["unknown"] and not is_service:
        return None  # parse.py decides whether it is content (kind="unknown")
    bubble = part(parts, "tgme_widget_message_bubble")
    if bubble == NULL:
        bubble = node
    media = media_from_nodes(bubble, parts["media"])
    if media is None:
        return None

    post = new_post(channel, int(id_text), f"{P_TME}/{channel}/{id_text}")
    data_view = attribute(node, b"data-view")
    try:
        view = read_data_view(data_view) if data_view else None
    except UnicodeDecodeError:
        view = None
    if view is None:
        view = P_decode_data_view(data_view)
    if "c" in view:
        try:
            post.channel_id = abs(int(view["c"]))
        except (TypeError, ValueError):
            pass
    if str(view.get("p", "")).endswith("g"):
        post.grouped_id = str(view["p"])

    found = part(parts, "tgme_widget_message_date")
    found = first_time(found) if found != NULL else NULL
    post.date = utc_date(found) if found != NULL else None

    found = part(parts, "tgme_widget_message_views")
    if found != NULL:
        post.views_text, post.views, post.views_precision = count_of(node_text(found))
    post.edited = edited_mark(part(parts, "tgme_widget_message_meta"))
    post.author = plain_text(part(parts, "tgme_widget_message_from_author"))
    found = part(parts, "tgme_widget_message_via_bot")
    if found != NULL:
        post.via_bot = (P_clean_text(node_text(found)) or "").lstrip("@") or P_tme_target(attribute(found, b"href"))[0]

    found = part(parts, "tgme_widget_message_forwarded_from")
    if found != NULL:
        fill_forward(post, found)
    found = part(parts, "tgme_widget_message_reply")
    if found != NULL:
        fill_reply(post, found)
    found = part(parts, "tgme_widget_message_link_preview")
    if found != NULL:
        fill_link_preview(post, found)

    found = main_text_node(node, parts["tgme_widget_message_text"])
    if is_service:
        post.kind = "service"
        post.service_text = plain_text(found)
    elif found != NULL:
        fill_text(post, found)

    post.media = media
    post.album_ids = [
        m.message_id for m in media if m.message_id is not None
    ] if post.grouped_id or len(media) > 1 else []
    post.media_too_big = "media_too_big" in notices or any(m.too_big for m in media)
    post.media_not_supported = "media_not_supported" in notices
    post.open_in_telegram = "open_in_telegram" in notices

    found = part(parts, "tgme_widget_message_reactions")
    if found != NULL:
        post.reactions = parse_reactions(found)
    return post


# ---------------------------------------------------------------- page level


cdef Py_ssize_t NODE_OFFSET = 0  # where a LexborNode keeps its lxb_dom_node_t pointer


cdef object node_at(size_t address, parser):
    """A selectolax LexborNode for a lexbor node, as selectolax's own LexborNode.new makes it."""
    node = (<PyTypeObject *> NODE_TYPE).tp_new(NODE_TYPE, <PyObject *> EMPTY, NULL)
    node.parser = parser
    (<size_t *> (<char *> <void *> node + NODE_OFFSET))[0] = address
    return node


cdef type NODE_TYPE = _selectolax.LexborNode
cdef tuple EMPTY = ()


cdef class Document:
    """What parse.document_parts finds, gathered element by element."""
    cdef object tree, info, history
    cdef list messages, more_links

    def __cinit__(self, tree):
        self.tree = tree
        self.messages = []
        self.more_links = []

    cdef bint check(self, fp_node_t *node, const unsigned char *data, size_t length) except -1:
        """Record node if the document query would match it; True for a message block."""
        cdef int flags
        if not contains(data, length, b"me_"):  # all of them have tgme_... or tme_...
            return False
        flags = document_classes(data, length)
        if flags & IS_MESSAGE:
            self.messages.append(node_at(<size_t> node, self.tree))
        if self.info is None and flags & IS_INFO:
            self.info = node_at(<size_t> node, self.tree)
        if self.history is None and flags & IS_HISTORY:
            self.history = node_at(<size_t> node, self.tree)
        if node.local_name == T_A and flags & IS_MORE:
            self.more_links.append(node_at(<size_t> node, self.tree))
        return flags & IS_MESSAGE


cdef enum:
    IS_MESSAGE = 1
    IS_INFO = 2
    IS_HISTORY = 4
    IS_MORE = 8


cdef int document_classes(const unsigned char *data, size_t length):
    """Which of parse.DOCUMENT_SELECTOR's classes a class attribute holds."""
    cdef int flags = 0
    if token_in(data, length, b"tgme_widget_message"):
        flags |= IS_MESSAGE
    if contains(data, length, b"tgme_channel_"):
        if token_in(data, length, b"tgme_channel_info"):
            flags |= IS_INFO
        if token_in(data, length, b"tgme_channel_history"):
            flags |= IS_HISTORY
    if contains(data, length, b"tme_"):
        if token_in(data, length, b"tme_no_messages_found"):
            flags |= IS_HISTORY
        if token_in(data, length, b"tme_messages_more"):
            flags |= IS_MORE
    return flags


def document_parts(tree):
    """parse.document_parts, plus {message address: its post_parts} for parse_post.

    One walk over the document: a message block's own elements are sorted into its parts
    on the way, instead of being walked again for each post."""
    root_node = tree.root
    if root_node is None:
        return [], None, None, [], {}
    cdef fp_node_t *root = as_node(root_node.mem_id)
    cdef fp_node_t *node = root
    cdef fp_node_t *inner
    cdef size_t length
    cdef const unsigned char *data
    cdef Document found = Document(tree)
    cdef dict parts_of = {}
    cdef dict parts
    while node != NULL:
        data = class_attribute(node, &length)
        if data != NULL and found.check(node, data, length):
            # the message block: its subtree, for both the document and its parts
            parts = new_parts()
            add_part(parts, node, data, length)
            inner = following(node, node)
            while inner != NULL:
                data = class_attribute(inner, &length)
                if data != NULL:
                    add_part(parts, inner, data, length)
                    found.check(inner, data, length)  # (a block inside a block: parts of its own later)
                inner = following(inner, node)
            parts_of[<size_t> node] = parts
            node = skipping(node, root)
            continue
        node = following(node, root)
    return found.messages, found.info, found.history, found.more_links, parts_of


def head_links(head):
    """parse.head_links: [(rel, href)] of every <link rel> in <head>."""
    if head is None:
        return []
    cdef fp_node_t *root = as_node(head.mem_id)
    cdef fp_node_t *node = root
    links = []
    while node != NULL:
        if node.type == ELEMENT and node.local_name == T_LINK and has_attribute(node, b"rel", 3):
            links.append((attribute(node, b"rel"), attribute(node, b"href")))
        node = following(node, root)
    return links


cdef bint has_ancestor_chain(fp_node_t *node, tuple tokens):
    """The ancestors of node include tokens[0], and above it tokens[1], ... (CSS descendant combinators)."""
    cdef Py_ssize_t i = 0
    cdef fp_node_t *parent = node.parent
    while parent != NULL and i < len(tokens):
        if has_class(parent, tokens[i]):
            i += 1
        parent = parent.parent
    return i == len(tokens)


cdef fp_node_t *first_in_chain(fp_node_t *root, uintptr_t tag, bytes token, tuple ancestors):
    """root.css_first("<ancestors...> .token") or ("<ancestors...> tag") when token is None."""
    cdef fp_node_t *node = root
    while node != NULL:
        if node.type == ELEMENT and (
            (token is None and node.local_name == tag) or (token is not None and has_class(node, token))
        ) and has_ancestor_chain(node, ancestors):
            return node
        node = following(node, root)
    return NULL


def parse_channel_info(info, fallback_username):
    """parse.parse_channel_info."""
    cdef fp_node_t *root = as_node(info.mem_id)
    cdef fp_node_t *found
    cdef fp_node_t *counter
    username = None
    found = first_with_class(root, b"tgme_channel_info_header_username")
    if found != NULL:
        username = (P_clean_text(node_text(found)) or "").lstrip("@") or None
    avatar = first_in_chain(root, T_IMG, None, (b"tgme_page_photo_image", b"tgme_channel_info_header"))
    found = first_in_chain(root, 0, b"verified-icon", (b"tgme_channel_info_header_labels",))
    channel = P_Channel(
        username=username or fallback_username or "",
        title=plain_text(first_with_class(root, b"tgme_channel_info_header_title")),
        avatar_url=P_absolute_url(attribute(avatar, b"src")) if avatar != NULL else None,
        verified=found != NULL,
    )
    counters = {}
    counter = root
    while counter != NULL:
        if has_class(counter, b"tgme_channel_info_counter"):
            value = first_text(counter, b"counter_value")
            kind = (first_text(counter, b"counter_type") or "").lower()
            if value and kind:
                counters[kind if kind.endswith("s") else kind + "s"] = P_parse_count(value)
        counter = following(counter, root)
    channel.counters = counters
    found = first_with_class(root, b"tgme_channel_info_description")
    if found != NULL:
        rich = rich_text(found, f"{P_TME}/s/{channel.username}")
        channel.description = rich.plain()
        channel.description_html = P_sanitise_html(rich.safe_html())
    return channel


# ---------------------------------------------------------------- set-up and self-check


def _learn_tags():
    global T_A, T_BR, T_I, T_SPAN, T_TIME, T_VIDEO, T_PRE, T_LINK, T_IMG, ITALIC_FORMAT
    names = set(P.TEXT_TAGS) | {"a", "br", "i", "span", "time", "video", "link", "img"} | (
        set(P.SKIPPED_TAGS) - {"-comment"}
    )
    body = "".join(f"<{n}></{n}>" if n not in ("br", "img", "link") else f"<{n}>" for n in sorted(names))
    tree = _selectolax.LexborHTMLParser(f"<html><body><div>{body}</div></body></html>")
    ids = {}
    for name in names:
        found = tree.css_first(name)
        if found is None or found.tag != name:
            raise RuntimeError(f"tag {name!r} not found in the sample")
        ids[name] = as_node(found.mem_id).local_name
    if len(set(ids.values())) != len(ids):
        raise RuntimeError("tag ids are not distinct")
    T_A, T_BR, T_I, T_SPAN = ids["a"], ids["br"], ids["i"], ids["span"]
    T_TIME, T_VIDEO, T_PRE = ids["time"], ids["video"], ids["pre"]
    T_LINK, T_IMG = ids["link"], ids["img"]
    if any(i >= TAG_TABLE_SIZE for i in ids.values()):
        raise RuntimeError("standard tag ids beyond the table")
    for i in range(TAG_TABLE_SIZE):
        TAG_ROLE[i] = KEEP_CONTENT
    FORMAT_OPEN.clear()
    FORMAT_CLOSE.clear()
    for name, out in P.TEXT_TAGS.items():  # b, strong, i, u, ins, s, del, code, pre, blockquote...
        TAG_ROLE[ids[name]] = FORMAT + len(FORMAT_OPEN)
        if name == "i":
            ITALIC_FORMAT = len(FORMAT_OPEN)
        FORMAT_OPEN.append(f"<{out}>".encode())
        FORMAT_CLOSE.append(f"</{out}>".encode())
    if FORMAT + len(FORMAT_OPEN) > 255:
        raise RuntimeError("too many text tags")
    for name in P.SKIPPED_TAGS:
        if name != "-comment":
            TAG_ROLE[ids[name]] = SKIP
    TAG_ROLE[T_BR], TAG_ROLE[T_A], TAG_ROLE[T_I], TAG_ROLE[T_SPAN] = LINE_BREAK, LINK, ITALIC, SPAN


# A post that exercises every branch above; ready() compares both paths on it.
SAMPLE = """<html><head></head><body><div class="tgme_widget_message_wrap">
<div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="sample/7"
 data-view="eyJjIjotMTIzNCwicCI6IjdnIn0">
<div class="tgme_widget_message_bubble">
<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from
 <a class="tgme_widget_message_forwarded_from_name" href="https://t.me/other/5"><span>Other</span></a></div>
<a class="tgme_widget_message_reply" href="https://t.me/sample/3"><div class="tgme_widget_message_author_name">A</div>
<div class="tgme_widget_message_metatext">quoted</div></a>
<div class="tgme_widget_message_grouped_wrap"><div class="tgme_widget_message_grouped">
<a class="tgme_widget_message_photo_wrap grouped_media_wrap" href="https://t.me/sample/7"
 style="width:100px;background-image:url('https://cdn.example/p.jpg')"></a>
<a class="tgme_widget_message_video_player grouped_media_wrap" href="https://t.me/sample/8">
<i class="tgme_widget_message_video_thumb" style="background-image:url('//cdn.example/t.jpg')"></i>
<div class="tgme_widget_message_video_wrap"><video class="tgme_widget_message_video" src="https://cdn.example/v.mp4" loop></video></div>
<time class="message_video_duration">0:07</time></a></div></div>
<div class="tgme_widget_message_document_wrap"><div class="tgme_widget_message_document_icon audio"></div>
<div class="tgme_widget_message_document_title">Song</div><div class="tgme_widget_message_document_extra">Band</div></div>
<div class="tgme_widget_message_text js-message_text" dir="auto">Hello <b>bold</b> <i class="emoji"><b>\u2764</b></i>
<span class="tg-spoiler">hidden</span> <tg-spoiler>x</tg-spoiler><br><a href="?q=%23tag">#tag</a> <a href="https://t.me/who">@who</a>
<a href="https://www.example.org/a?b=1&amp;c=2">link</a> <pre>a\n b</pre> <code>&lt;c&gt;</code> <tg-emoji emoji-id="9">\u2b50</tg-emoji></div>
<a class="tgme_widget_message_link_preview" href="https://example.org/x"><div class="link_preview_site_name">Site</div>
<i class="link_preview_image" style="background-image:url('https://cdn.example/i.jpg')"></i>
<div class="link_preview_title">Title</div><div class="link_preview_description">Words</div></a>
<div class="tgme_widget_message_reactions"><span class="tgme_reaction"><i class="emoji"><b>\U0001f44d</b></i>1.2K</span>
<span class="tgme_reaction"><tg-emoji emoji-id="55"></tg-emoji>3</span><span class="tgme_reaction tgme_reaction_paid"><i class="emoji"></i>7</span></div>
<div class="tgme_widget_message_footer"><div class="tgme_widget_message_info">
<span class="tgme_widget_message_views">2.5K</span><span class="tgme_widget_message_meta">edited
<a class="tgme_widget_message_date" href="https://t.me/sample/7"><time datetime="2026-01-02T03:04:05+03:00">x</time></a></span>
</div></div></div></div></div></body></html>"""

SAMPLE_INFO = """<html><head><link rel="canonical" href="https://t.me/s/sample"></head><body>
<div class="tgme_channel_info"><div class="tgme_channel_info_header">
<i class="tgme_page_photo_image bgcolor1"><img src="https://cdn.example/a.jpg"></i>
<div class="tgme_channel_info_header_title"><span>Sample</span></div>
<div class="tgme_channel_info_header_labels"><i class="verified-icon"></i></div>
<div class="tgme_channel_info_header_username"><a href="https://t.me/sample">@sample</a></div></div>
<div class="tgme_channel_info_description">About <b>us</b><br><a href="?q=%23x">#x</a></div>
<div class="tgme_channel_info_counters"><div class="tgme_channel_info_counter"><span class="counter_value">1.51M</span>
<span class="counter_type">subscribers</span></div><div class="tgme_channel_info_counter"><span class="counter_value">1</span>
<span class="counter_type">photo</span></div></div></div></body></html>"""


def ready(parse_module):
    """Bind scripts.parse and lexbor, learn the tag ids, and check this path against
    parse.py on SAMPLE. False (or an exception) means: do not use this module."""
    global P, KNOWN_NOTICES_AND_SERVICE, P_NOTICE_FLAGS, P_ws_newline_sub, P_reaction_count_search, P_bg_url_search
    global P_absolute_url, P_tme_target, P_TME, P_clean_text, P_media_size, P_LINK_REL, P_tidy_text, P_search_target, P_sanitise_html, P_part_roles, P_parse_duration, P_parse_count, P_normalise_date, P_media_class, P_link_domain, P_escape_attribute, P_decode_data_view, P_count_value, P_SAFE_SCHEMES, P_Channel
    P = parse_module
    P_absolute_url = P.absolute_url
    P_tme_target = P.tme_target
    P_TME = P.TME
    P_clean_text = P.clean_text
    P_media_size = P.media_size
    P_LINK_REL = P.LINK_REL
    P_tidy_text = P.tidy_text
    P_search_target = P.search_target
    P_sanitise_html = P.sanitise_html
    P_part_roles = P.part_roles
    P_parse_duration = P.parse_duration
    P_parse_count = P.parse_count
    P_normalise_date = P.normalise_date
    P_media_class = P.media_class
    P_link_domain = P.link_domain
    P_escape_attribute = P.escape_attribute
    P_decode_data_view = P.decode_data_view
    P_count_value = P._count_value
    P_SAFE_SCHEMES = P.SAFE_SCHEMES
    P_Channel = P.Channel
    P_NOTICE_FLAGS = P.NOTICE_FLAGS
    P_ws_newline_sub, P_reaction_count_search = P._WS_NEWLINE.sub, P._REACTION_COUNT.search
    P_bg_url_search = P._BG_URL.search
    KNOWN_NOTICES_AND_SERVICE = frozenset(P.NOTICE_FLAGS.values()) | {"service"}
    if LIST_CLASSES != P.LIST_CLASSES:
        return False
    _bind_lexbor()
    _learn_tags()
    _learn_post_defaults()
    tree = _selectolax.LexborHTMLParser(SAMPLE)
    message = tree.css_first(".tgme_widget_message")
    if not _learn_node_offset(message):
        return False
    made = node_at(message.mem_id, tree)
    if made.mem_id != message.mem_id or made.attributes != message.attributes or made.html != message.html:
        return False
    fast = parse_post(message)
    reference = P.parse_post(message, [])
    if fast is None or fast != reference or fast.text is None or len(fast.media) != 3:
        return False
    parts, reference_parts = document_parts(tree), P.document_parts(tree)
    same = lambda a, b: [n.mem_id for n in a] == [n.mem_id for n in b]
    if not same(parts[0], reference_parts[0]) or not same(parts[3], reference_parts[3]):
        return False
    if parse_post(message, parts[4]) != reference:
        return False
    if head_links(tree.head) != P.head_links(tree.head):
        return False
    info = _selectolax.LexborHTMLParser(SAMPLE_INFO).css_first(".tgme_channel_info")
    return parse_channel_info(info, None) == P.parse_channel_info(info, None)


def _learn_node_offset(node):
    """Find the LexborNode field holding the lexbor pointer (after the object header)."""
    global NODE_OFFSET
    cdef size_t address = node.mem_id
    cdef char *base = <char *> <void *> node
    cdef Py_ssize_t offset = sizeof(size_t) * 2  # past the reference count and the type
    while offset + <Py_ssize_t> sizeof(size_t) <= type(node).__basicsize__:
        if (<size_t *> (base + offset))[0] == address:
            NODE_OFFSET = offset
            return True
        offset += sizeof(size_t)
    return False


def class_has(str classes, str token):
    """token_in for a Python string (for the tests: it must agree with `token in classes.split()`)."""
    data = classes.encode("utf-8")
    return token_in(data, len(data), token.encode("utf-8"))
