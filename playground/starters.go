package playground

import "net/http"

// The starter queries of tenantql's two APIs: what the query editor shows
// the first time a browser opens the IDE on a host.
const (
	platformQuery = "# Platform API: send Authorization: Bearer <admin token> (Headers tab)\n{\n  tenants(first: 10) {\n    edges { node { slug name status host } }\n  }\n}\n"
	orgQuery      = ": sign in with login, then send Authorization: Bearer <token>\n{\n  organization { slug name }\n}\n"
)

// Platform serves the IDE of the platform API (the admin host) at
// endpoint, starting with a list of tenants and where the admin token goes.
func Platform(endpoint string) http.Handler {
	return Handler("tenantql platform", endpoint, platformQuery)
}

// Organization serves the IDE of the API of the organization called name
// at endpoint, starting with a query of the organization and how to sign
// in.
func Organization(name, endpoint string) http.Handler {
	return Handler("tenantql: "+name, endpoint, "# "+name+orgQuery)
}
