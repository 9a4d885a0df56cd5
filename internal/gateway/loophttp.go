package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The HTTP/1.1 the event loop front speaks (ADR 0009). It reads only the
// requests it is sure to read exactly as fasthttp would: POST over
// HTTP/1.1, a body framed by Content-Length within the limit, a plain path,
// and a well-formed head. Anything else is handed over with its connection
// to the fasthttp server, which answers it (errors included) as before.
// Towards upstreams it writes one kind of request and reads any answer an
// HTTP/1.x server may give (Content-Length, chunked, or until close).

// reqHead is what the loop needs of a request head. The byte slices point
// into the connection's buffer.
type reqHead struct {
	path    []byte
	apiKey  []byte
	bodyLen int
	close   bool // Connection: close
}

// parseReqHead results besides a head length.
const (
	headIncomplete = 0
	headHandOff    = -1
)

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

// parseReqHead reads the request head at the start of b into h. It returns
// the head's length, headIncomplete when b holds no whole head yet (and is
// under the header limit), or headHandOff when the loop should not serve
// the request itself.
func parseReqHead(b []byte, maxBody int64, h *reqHead) int {
	*h = reqHead{}
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		if len(b) >= frontHeaderBytes || bareLF(b) {
			return headHandOff
		}
		return headIncomplete
	}
	n := end + 4
	if n > frontHeaderBytes || bareLF(b[:n]) {
		return headHandOff
	}
	head := b[:end+2] // every line with its CRLF
	i := bytes.Index(head, crlf)
	if !parseRequestLine(head[:i], h) {
		return headHandOff
	}
	haveLength, haveKey, haveHost := false, false, false
	for rest := head[i+2:]; len(rest) > 0; {
		_, name, value, next, ok := nextField(rest)
		rest = next
		if !ok || !fieldValue(value) {
			return headHandOff // also a folded line (leading space)
		}
		switch {
		case asciiEqualFold(name, "host"):
			// fasthttp routes by path only when it can read the host.
			if haveHost || !plainHost(value) {
				return headHandOff
			}
			haveHost = true
		case asciiEqualFold(name, "content-length"):
			v, ok := parseLength(value)
			if !ok || haveLength {
				return headHandOff
			}
			h.bodyLen, haveLength = v, true
		case asciiEqualFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = trimOWS(tok)
				switch {
				case asciiEqualFold(tok, "close"):
					h.close = true
				case asciiEqualFold(tok, "upgrade"):
					return headHandOff
				}
			}
		case asciiEqualFold(name, "x-api-key"):
			if !haveKey {
				h.apiKey, haveKey = value, true
			}
		case asciiEqualFold(name, "transfer-encoding"), asciiEqualFold(name, "expect"),
			asciiEqualFold(name, "upgrade"):
			return headHandOff
		}
	}
	if !haveLength || int64(h.bodyLen) > maxBody {
		return headHandOff
	}
	return n
}

// parseRequestLine accepts "POST <plain path> HTTP/1.1".
func parseRequestLine(line []byte, h *reqHead) bool {
	rest, ok := bytes.CutPrefix(line, []byte("POST /"))
	if !ok {
		return false
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 || string(rest[sp+1:]) != "HTTP/1.1" {
		return false
	}
	path := line[len("POST ") : len("POST ")+1+sp]
	// fasthttp would decode, clean or cut these: leave them to it.
	for _, c := range path {
		if c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '\\' {
			return false
		}
	}
	if bytes.Contains(path, []byte("//")) || bytes.Contains(path, []byte("/.")) {
		return false
	}
	h.path = path
	return true
}

// nextField splits the first line off header lines that each end in
// CRLF: the line, its name and value (without surrounding blanks), and
// the lines after it. ok is false when the line is not "token: value".
func nextField(lines []byte) (line, name, value, rest []byte, ok bool) {
	j := bytes.Index(lines, crlf)
	line, rest = lines[:j], lines[j+2:]
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return line, nil, nil, rest, false
	}
	return line, line[:colon], trimOWS(line[colon+1:]), rest, true
}

// bareLF reports whether b has a line feed without a carriage return
// before it.
func bareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// fieldValue reports whether a header value has no control characters
// (fasthttp refuses those).
func fieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// plainHost accepts a host name or address, with an optional port:
// letters, digits, '.', '-', '_', or an IPv6 address in brackets.
func plainHost(b []byte) bool {
	if len(b) > 0 && b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 2 {
			return false
		}
		for _, c := range b[1:end] {
			if !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		b = b[end+1:]
	} else {
		n := 0
		for n < len(b) && (isHex(b[n]) || ('g' <= b[n]|0x20 && b[n]|0x20 <= 'z') || b[n] == '.' || b[n] == '-' || b[n] == '_') {
			n++
		}
		if n == 0 {
			return false
		}
		b = b[n:]
	}
	if len(b) == 0 {
		return true
	}
	if b[0] != ':' || len(b) < 2 || len(b) > 6 {
		return false
	}
	_, ok := parseLength(b[1:])
	return ok
}

func isToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return len(b) > 0
}

func trimOWS(b []byte) []byte { return bytes.Trim(b, " \t") }

// asciiEqualFold compares b with a lower-case ASCII name.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseLength reads a Content-Length value: decimal digits, at most 18.
func parseLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// appendResponse appends an HTTP/1.1 answer with a JSON body.
func appendResponse(dst []byte, status int, body []byte, retryAfter string, close bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	if retryAfter != "" {
		dst = append(dst, "\r\nRetry-After: "...)
		dst = append(dst, retryAfter...)
	}
	if close {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

func statusText(status int) string {
	switch status {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Request Entity Too Large"
	case 429:
		return "Too Many Requests"
	case 503:
		return "Service Unavailable"
	}
	return "Status"
}

// appendUpstreamRequest appends the POST of a JSON-RPC body to an
// upstream; prefix is the request line and headers up to Content-Length
// (see upstreamPrefix).
func appendUpstreamRequest(dst, prefix, body []byte) []byte {
	dst = append(dst, prefix...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// upstreamPrefix is the start of every request to an upstream: request
// line, Host, Content-Type and Authorization (when set).
func upstreamPrefix(requestURI, host, auth string) []byte {
	b := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hansa-gateway\r\nContent-Type: application/json\r\n", requestURI, host)
	if auth != "" {
		b = fmt.Appendf(b, "Authorization: %s\r\n", auth)
	}
	return append(b, "Content-Length: "...)
}

// maxUpstreamHead bounds an upstream answer's head.
const maxUpstreamHead = 64 << 10

var errUpstreamHTTP = errors.New("malformed HTTP answer")

// respHead is what the loop needs of an upstream answer's head.
type respHead struct {
	status  int
	length  int // -1: none given
	chunked bool
	close   bool // the upstream closes the connection after this answer
}

// parseRespHead reads an answer head at the start of b. It returns the
// head's length, 0 when b does not hold a whole head yet, or an error.
func parseRespHead(b []byte, h *respHead) (int, error) {
	*h = respHead{length: -1}
	end := bytes.Index(b, crlfcrlf)
	if (end < 0 && len(b) >= maxUpstreamHead) || end+4 > maxUpstreamHead {
		return 0, fmt.Errorf("%w: head over %d bytes", errUpstreamHTTP, maxUpstreamHead)
	}
	seen := b
	if end >= 0 {
		seen = b[:end+4]
	}
	if bareLF(seen) {
		return 0, fmt.Errorf("%w: a line ends without CR", errUpstreamHTTP)
	}
	if end < 0 {
		return 0, nil
	}
	head := b[:end+2]
	i := bytes.Index(head, crlf)
	line := head[:i]
	var http10 bool
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		http10 = true
	default:
		return 0, fmt.Errorf("%w: status line %q", errUpstreamHTTP, truncate(line, 40))
	}
	if len(line) < 12 || (len(line) > 12 && line[12] != ' ') {
		return 0, fmt.Errorf("%w: status line %q", errUpstreamHTTP, truncate(line, 40))
	}
	status, ok := parseLength(line[9:12])
	if !ok || status < 100 {
		return 0, fmt.Errorf("%w: status line %q", errUpstreamHTTP, truncate(line, 40))
	}
	h.status = status
	sawClose, sawKeepAlive := false, false
	for rest := head[i+2:]; len(rest) > 0; {
		line, name, value, next, ok := nextField(rest)
		rest = next
		if !ok {
			return 0, fmt.Errorf("%w: header line %q", errUpstreamHTTP, truncate(line, 40))
		}
		switch {
		case asciiEqualFold(name, "content-length"):
			v, ok := parseLength(value)
			if !ok || (h.length >= 0 && h.length != v) {
				return 0, fmt.Errorf("%w: Content-Length %q", errUpstreamHTTP, truncate(value, 40))
			}
			h.length = v
		case asciiEqualFold(name, "transfer-encoding"):
			// The gateway asks for no content coding: chunked is the only
			// transfer coding it reads.
			if !asciiEqualFold(value, "chunked") {
				return 0, fmt.Errorf("%w: Transfer-Encoding %q", errUpstreamHTTP, truncate(value, 40))
			}
			h.chunked = true
		case asciiEqualFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = trimOWS(tok)
				switch {
				case asciiEqualFold(tok, "close"):
					sawClose = true
				case asciiEqualFold(tok, "keep-alive"):
					sawKeepAlive = true
				}
			}
		}
	}
	h.close = sawClose || (http10 && !sawKeepAlive)
	switch {
	case status == 204 || status == 304 || status < 200:
		h.length, h.chunked = 0, false // no body, whatever the head says
	case h.chunked:
		h.length = -1 // chunked framing wins over a length
	case h.length < 0:
		h.close = true // the body ends with the connection
	}
	return end + 4, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// dechunker decodes a chunked body as its bytes arrive.
type dechunker struct {
	state   int
	left    int // bytes of the current chunk still to come
	trailer int // trailer bytes read
	body    []byte
	limit   int
}

// maxChunkLine bounds a chunk's size line (with extensions).
const maxChunkLine = 1024

const (
	chunkSize = iota
	chunkData
	chunkDataEnd
	chunkTrailer
	chunkDone
)

// feed decodes what it can of in, appending chunk data to d.body, and
// returns how many bytes of in it used; done is set once the last chunk
// and the trailer are read.
func (d *dechunker) feed(in []byte) (used int, done bool, err error) {
	for {
		rest := in[used:]
		switch d.state {
		case chunkSize:
			i := bytes.Index(rest, crlf)
			if i > maxChunkLine || (i < 0 && len(rest) > maxChunkLine) {
				return used, false, fmt.Errorf("%w: chunk size line too long", errUpstreamHTTP)
			}
			if i < 0 {
				return used, false, nil
			}
			line := rest[:i]
			if k := bytes.IndexByte(line, ';'); k >= 0 {
				line = line[:k] // chunk extensions
			}
			line = bytes.TrimRight(line, " \t")
			size, perr := strconv.ParseUint(string(line), 16, 32)
			if perr != nil || len(line) == 0 {
				return used, false, fmt.Errorf("%w: chunk size %q", errUpstreamHTTP, truncate(line, 20))
			}
			used += i + 2
			if size == 0 {
				d.state = chunkTrailer
				continue
			}
			if len(d.body)+int(size) > d.limit {
				return used, false, fmt.Errorf("%w: answer over %d bytes", errUpstreamHTTP, d.limit)
			}
			d.state, d.left = chunkData, int(size)
		case chunkData:
			k := min(d.left, len(rest))
			d.body = append(d.body, rest[:k]...)
			used += k
			d.left -= k
			if d.left > 0 {
				return used, false, nil
			}
			d.state = chunkDataEnd
		case chunkDataEnd:
			if len(rest) < 2 {
				return used, false, nil
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				return used, false, fmt.Errorf("%w: chunk not followed by CRLF", errUpstreamHTTP)
			}
			used += 2
			d.state = chunkSize
		case chunkTrailer:
			i := bytes.Index(rest, crlf)
			if i < 0 && d.trailer+len(rest) > maxUpstreamHead {
				return used, false, fmt.Errorf("%w: trailer too long", errUpstreamHTTP)
			}
			if i < 0 {
				return used, false, nil
			}
			if d.trailer += i + 2; d.trailer > maxUpstreamHead {
				return used, false, fmt.Errorf("%w: trailer too long", errUpstreamHTTP)
			}
			used += i + 2
			if i == 0 {
				d.state = chunkDone
				return used, true, nil
			}
		default:
			return used, true, nil
		}
	}
}
