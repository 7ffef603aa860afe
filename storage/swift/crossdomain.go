package swift

import (
	"net/http"
	"strconv"
)

// crossDomainPolicy is the policy /crossdomain.xml grants: Swift's
// crossdomain middleware's default, any site over any scheme, so that
// Flash, Java or Silverlight pages served elsewhere may call this API as
// browsers' JavaScript may through CORS.
const crossDomainPolicy = `<allow-access-from domain="*" secure="false" />`

// crossDomain answers GET /crossdomain.xml at the root of the Swift
// endpoint, without a token, as Swift's crossdomain middleware (ahead of
// auth in its pipeline) does.
func crossDomain(w http.ResponseWriter) {
	body := `<?xml version="1.0"?>` + "\n" +
		`<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd" >` + "\n" +
		"<cross-domain-policy>\n" + crossDomainPolicy + "\n</cross-domain-policy>"
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(body))
}
