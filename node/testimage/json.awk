# json.awk flattens one JSON document into "path<TAB>value" lines, one per
# scalar, in document order: {"a":{"b":"x"},"c":[1,true]} gives "a.b	x",
# "c.0	1", "c.1	true". The guest's /init uses it on the config drive's
# meta_data.json so that a key nested in "meta" can never be mistaken for a
# top-level one, whatever the key order or whitespace the writer chose.
# Newlines inside strings become spaces; \uXXXX outside ASCII becomes "?".
function ws() {
	while (pos <= n && index(" \t\r\n", substr(s, pos, 1))) pos++
}
function hexval(h,   i, v) {
	v = 0
	h = tolower(h)
	for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
	return v
}
function str(   c, out, v) {
	pos++
	out = ""
	while (pos <= n) {
		c = substr(s, pos, 1)
		if (c == "\"") { pos++; return out }
		if (c == "\\") {
			pos++
			c = substr(s, pos, 1)
			if (c == "n" || c == "r" || c == "t") out = out " "
			else if (c == "b" || c == "f") out = out
			else if (c == "u") {
				v = hexval(substr(s, pos + 1, 4))
				out = out ((v >= 32 && v < 127) ? sprintf("%c", v) : "?")
				pos += 4
			} else out = out c
			pos++
			continue
		}
		out = out c
		pos++
	}
	bad = 1
	return out
}
function emit(path, v) {
	gsub(/[\r\n\t]/, " ", v)
	sub(/ +$/, "", v)
	print path "\t" v
}
function key(path, k) {
	return path == "" ? k : path "." k
}
function value(path,   c, k, i, start) {
	ws()
	c = substr(s, pos, 1)
	if (c == "{") {
		pos++
		ws()
		if (substr(s, pos, 1) == "}") { pos++; return }
		while (pos <= n && !bad) {
			ws()
			if (substr(s, pos, 1) != "\"") { bad = 1; return }
			k = str()
			ws()
			if (substr(s, pos, 1) != ":") { bad = 1; return }
			pos++
			value(key(path, k))
			ws()
			c = substr(s, pos, 1)
			pos++
			if (c == "}") return
			if (c != ",") { bad = 1; return }
		}
		return
	}
	if (c == "[") {
		pos++
		ws()
		if (substr(s, pos, 1) == "]") { pos++; return }
		for (i = 0; pos <= n && !bad; i++) {
			value(key(path, i))
			ws()
			c = substr(s, pos, 1)
			pos++
			if (c == "]") return
			if (c != ",") { bad = 1; return }
		}
		return
	}
	if (c == "\"") { emit(path, str()); return }
	start = pos
	while (pos <= n && !index(",}] \t\r\n", substr(s, pos, 1))) pos++
	if (pos == start) { bad = 1; return }
	emit(path, substr(s, start, pos - start))
}
{ s = s $0 "\n" }
END {
	n = length(s)
	pos = 1
	bad = 0
	value("")
	if (bad) exit 1
}
