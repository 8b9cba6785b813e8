package store

// The content of SeedDemo. Users are referred to by their index in the
// ids SeedDemo builds: the owner (uOwner), then demoUsers in order.
const (
	uNone  = -1 // no assignee
	uOwner = 0
	uMaya  = 1
	uJonas = 2
	uPriya = 3
	uTomas = 4
)

type demoUser struct {
	local, name string
	role        Role
}

// demoUsers are the users SeedDemo adds next to the owner, at the owner's
// email domain.
func demoUsers() []demoUser {
	return []demoUser{
		{"maya.chen", "Maya Chen", RoleAdmin},
		{"jonas.weber", "Jonas Weber", RoleMember},
		{"priya.raman", "Priya Raman", RoleMember},
		{"tomas.alvarez", "Tomás Álvarez", RoleMember},
	}
}

type demoProject struct{ key, name string }

func demoProjects() []demoProject {
	return []demoProject{{"WEB", "Website"}, {"API", "Public API"}}
}

type demoComment struct {
	author int
	body   string
}

type demoIssue struct {
	project     string
	title       string
	description string
	status      IssueStatus
	assignee    int
	reporter    int
	comments    []demoComment
}

// demoIssues are the demo issues, oldest first.
func demoIssues() []demoIssue {
	return []demoIssue{
		{"WEB", "Set up a staging environment for the website",
			"We need a staging copy of the website so that content changes can be reviewed before they go live. It should deploy automatically from the main branch.",
			StatusDone, uMaya, uOwner, []demoComment{
				{uMaya, "Staging now deploys on every push to main. The basic auth credentials are in the team vault."},
				{uOwner, "Great, thanks! Let's use it for the pricing page review."},
			}},
		{"API", "Document the authentication flow",
			"The API docs do not explain how to obtain and refresh tokens. Add a step-by-step guide with curl examples.",
			StatusDone, uJonas, uMaya, []demoComment{
				{uJonas, "The draft is up for review in the docs repository."},
				{uMaya, "Looks good. Please add an example of the error returned for an expired token."},
				{uJonas, "Added it, merging now."},
			}},
		{"WEB", "Homepage hero image is blurry on retina displays",
			"The hero image is only served at 1x. Serve 2x assets with srcset and compress them.",
			StatusDone, uPriya, uJonas, []demoComment{
				{uPriya, "Switched to srcset with 1x and 2x WebP images and a JPEG fallback."},
			}},
		{"API", "Rate limit responses lack a Retry-After header",
			"Clients receiving HTTP 429 cannot tell when to retry. Add a Retry-After header with the number of seconds until the window resets.",
			StatusDone, uTomas, uJonas, []demoComment{
				{uTomas, "Implemented, and added X-RateLimit-Remaining while I was at it."},
				{uJonas, "Verified against the sandbox, works as expected."},
			}},
		{"WEB", "Add a cookie consent banner",
			"We need a consent banner before loading analytics scripts, with options to accept or reject non-essential cookies.",
			StatusDone, uMaya, uOwner, []demoComment{
				{uOwner, "Legal approved the wording."},
				{uMaya, "The banner is live. Analytics now loads only after consent."},
			}},
		{"API", "Pagination returns duplicate items when sorting by date",
			"When two items share the same creation time, the second page may repeat the last item of the first page. Use (created_at, id) as the cursor.",
			StatusDone, uTomas, uPriya, []demoComment{
				{uTomas, "Good catch. Switched to keyset pagination with the id as tie-breaker."},
				{uPriya, "Confirmed fixed on staging."},
				{uMaya, "Let's add a regression test for this."},
			}},
		{"WEB", "Footer links point to the old blog domain",
			"Several footer links still go to the old blog domain. Point them to the new /blog path and add redirects.",
			StatusDone, uJonas, uPriya, []demoComment{
				{uJonas, "Updated the links and added 301 redirects."},
			}},
		{"API", "Return 404 instead of 500 for unknown project keys",
			"Requesting /projects/UNKNOWN returns an internal server error. It should return 404 with a JSON error body.",
			StatusDone, uJonas, uTomas, []demoComment{
				{uJonas, "Fixed in the error mapping middleware."},
			}},
		{"WEB", "Contact form sends duplicate emails",
			"Double-clicking the submit button sends two emails. Disable the button while the request is in flight and make the endpoint idempotent.",
			StatusDone, uPriya, uMaya, []demoComment{
				{uPriya, "The button is disabled during submission now, and the endpoint deduplicates by request id."},
				{uMaya, "Nice, thanks."},
			}},
		{"API", "Publish an OpenAPI description",
			"Generate an OpenAPI 3.1 document from our handlers and publish it next to the docs.",
			StatusInProgress, uMaya, uOwner, []demoComment{
				{uMaya, "About half of the endpoints are annotated so far."},
				{uOwner, "Let's do the issues and projects endpoints first."},
			}},
		{"WEB", "Improve the mobile Lighthouse performance score",
			"The mobile performance score is 62. The main culprits are render-blocking fonts and a large JavaScript bundle. The target is 90 or more.",
			StatusInProgress, uPriya, uOwner, []demoComment{
				{uPriya, "Fonts are preloaded and swapped now; the score is up to 78."},
				{uPriya, "Next step: split the bundle per route."},
				{uOwner, "Great progress!"},
			}},
		{"API", "Webhooks: retry failed deliveries with backoff",
			"Failed webhook deliveries are dropped. Retry up to 8 times with exponential backoff and record every attempt.",
			StatusInProgress, uTomas, uMaya, []demoComment{
				{uTomas, "The queue table and the worker are in place; working on the backoff schedule."},
				{uMaya, "Please make the maximum delay configurable per endpoint."},
			}},
		{"WEB", "Pricing page: add an annual billing toggle",
			"Marketing wants a monthly/annual toggle on the pricing page that shows the 20% annual discount.",
			StatusInProgress, uMaya, uJonas, []demoComment{
				{uMaya, "The design is ready, implementing the toggle component."},
			}},
		{"API", "Deprecate the v1 search endpoint",
			"Announce the deprecation of GET /v1/search, add a Sunset header and point clients to /v2/search.",
			StatusTodo, uNone, uMaya, []demoComment{
				{uOwner, "Let's give customers six months."},
			}},
		{"WEB", "Careers page layout is broken in Safari",
			"Job cards overlap in Safari 16 because of the flexbox gap fallback. To reproduce, open /careers in Safari on macOS.",
			StatusDone, uJonas, uTomas, []demoComment{
				{uJonas, "Replaced gap with margins in the affected component."},
				{uTomas, "Looks right in Safari now."},
			}},
		{"API", "Support filtering issues by assignee",
			"Add an assignee filter to the issue list endpoint. Unassigned issues should be reachable too.",
			StatusDone, uJonas, uPriya, []demoComment{
				{uJonas, "Shipped. Use assignee=none for unassigned issues."},
			}},
		{"WEB", "Add a dark mode",
			"Support prefers-color-scheme and add a manual toggle in the header. Check the contrast of all brand colours.",
			StatusTodo, uNone, uPriya, []demoComment{
				{uMaya, "+1, several customers asked for this."},
				{uPriya, "We should audit the illustrations too, some have white backgrounds."},
			}},
		{"API", "Slow responses on /issues for large projects",
			"The p95 latency of GET /issues is over 2 seconds for projects with more than 50,000 issues. The count query seems to be the bottleneck.",
			StatusInProgress, uTomas, uOwner, []demoComment{
				{uTomas, "The count does a sequential scan; adding a covering index."},
				{uTomas, "p95 is down to 400 ms on staging."},
				{uOwner, "Can we get it under 200 ms?"},
			}},
		{"WEB", "Newsletter signup does not validate emails",
			"The signup form accepts addresses like \"foo@\" and the mailing provider rejects them later. Validate on the client and on the server.",
			StatusTodo, uPriya, uMaya, []demoComment{
				{uPriya, "The provider has a validation endpoint we could call from the server."},
			}},
		{"API", "Add the request id to error responses",
			"Include the request id in every error body so that support can find the matching log lines.",
			StatusDone, uMaya, uJonas, []demoComment{
				{uJonas, "This has already helped with two support tickets."},
			}},
		{"WEB", "Update the team page with the new hires",
			"Add photos and short bios for the three people who joined this quarter.",
			StatusTodo, uJonas, uOwner, []demoComment{
				{uJonas, "Waiting for the photos from the new hires."},
			}},
		{"API", "Idempotency keys for POST requests",
			"Accept an Idempotency-Key header on POST endpoints and return the stored response when a key is reused within 24 hours.",
			StatusTodo, uNone, uTomas, []demoComment{
				{uMaya, "Payment APIs handle this well; worth copying their semantics for conflicting reuse."},
			}},
		{"WEB", "Blog: add an RSS feed",
			"Several readers asked for an RSS feed. Generate /blog/feed.xml at build time.",
			StatusTodo, uNone, uJonas, []demoComment{
				{uPriya, "Our static site generator has a plugin for this, it should be quick."},
			}},
		{"API", "SDK: publish TypeScript types",
			"Generate TypeScript types from the OpenAPI description and publish them as a separate npm package.",
			StatusInProgress, uPriya, uMaya, []demoComment{
				{uPriya, "Blocked until the OpenAPI description is complete."},
			}},
		{"WEB", "Site search shows stale results",
			"The search index is rebuilt weekly, so new pages do not show up. Rebuild it on every deploy.",
			StatusInProgress, uJonas, uPriya, []demoComment{
				{uJonas, "Moved the index build into the deploy pipeline; testing it now."},
			}},
		{"API", "Report validation errors for all fields at once",
			"Only the first invalid field is reported today. Return a list of field errors so that forms can show them together.",
			StatusTodo, uJonas, uOwner, []demoComment{
				{uPriya, "The web app's forms can already display a list of errors."},
			}},
		{"WEB", "Accessibility audit fixes",
			"The audit found missing alt texts, low-contrast buttons and a keyboard trap in the mobile menu. Fix the high-priority items first.",
			StatusTodo, uMaya, uTomas, []demoComment{
				{uMaya, "Starting with the keyboard trap, since it blocks navigation entirely."},
				{uTomas, "The full report is in the shared drive, next to the audit contract."},
			}},
		{"API", "Add a health check endpoint",
			"Expose GET /healthz, checking database connectivity, for the load balancer.",
			StatusDone, uTomas, uMaya, []demoComment{
				{uTomas, "Done. It answers 503 when the database is unreachable."},
			}},
		{"WEB", "Translate the homepage into German",
			"Sales is expanding into German-speaking countries. Translate the homepage and add the /de route with hreflang tags.",
			StatusTodo, uNone, uOwner, []demoComment{
				{uPriya, "I can review the translations."},
			}},
		{"API", "Audit log for admin actions",
			"Record who changed roles, deleted projects or rotated tokens, with a timestamp and the previous value.",
			StatusTodo, uTomas, uOwner, []demoComment{
				{uMaya, "We should log failed sign-in attempts as well."},
			}},
		{"WEB", "Lazy-load and compress blog images",
			"Blog posts load all their images eagerly. Add loading=lazy and convert uploads to WebP.",
			StatusInProgress, uPriya, uJonas, []demoComment{
				{uPriya, "The conversion script has run on all existing posts."},
			}},
		{"API", "Expose issue comments in the API",
			"Add endpoints to list and create the comments of an issue, paginated oldest first.",
			StatusInProgress, uJonas, uPriya, []demoComment{
				{uJonas, "The list endpoint is done, the create endpoint is in review."},
				{uMaya, "Remember to check that the author belongs to the organization."},
			}},
		{"WEB", "The 404 page should suggest popular pages",
			"Replace the plain 404 page with a friendly one that links to the docs, the pricing page and the blog.",
			StatusTodo, uNone, uMaya, []demoComment{
				{uJonas, "Could we show a search box too?"},
			}},
		{"API", "Refresh tokens never expire",
			"Refresh tokens currently live forever. Enforce a 30-day lifetime and rotate them on use.",
			StatusTodo, uMaya, uTomas, []demoComment{
				{uOwner, "This is security relevant, let's plan it for the next sprint."},
				{uMaya, "Agreed, I'll pick it up after the webhook work."},
			}},
		{"WEB", "Cache static assets with a long max-age",
			"Fingerprinted assets are served with max-age=3600. Use one year and immutable.",
			StatusDone, uMaya, uPriya, []demoComment{
				{uMaya, "The CDN configuration is updated."},
			}},
		{"API", "Typo in the error message for invalid dates",
			"The message reads \"invlaid date format\". Fix the typo and add a test.",
			StatusDone, uNone, uJonas, []demoComment{
				{uPriya, "Fixed as part of the validation refactoring."},
			}},
		{"WEB", "Testimonials carousel changes slides too fast",
			"Slides change every 2 seconds, too fast to read. Slow it down to 7 seconds and pause on hover.",
			StatusTodo, uPriya, uOwner, []demoComment{
				{uJonas, "Let's add visible controls too; autoplay alone is an accessibility problem."},
			}},
		{"API", "Bulk update of issue statuses",
			"Allow changing the status of up to 100 issues in one request, for example when closing a milestone.",
			StatusTodo, uNone, uPriya, []demoComment{
				{uTomas, "Should this be atomic, or report results per issue?"},
				{uPriya, "Results per issue, with the successful changes applied."},
			}},
		{"WEB", "Track signup conversions",
			"Send a conversion event on successful signup so that marketing can measure campaigns, respecting cookie consent.",
			StatusTodo, uTomas, uOwner, []demoComment{
				{uOwner, "Please agree on the event names with marketing first."},
			}},
		{"API", "Write a runbook for database failover",
			"Document how to promote the replica, update the connection strings and check that the API recovers.",
			StatusTodo, uTomas, uMaya, []demoComment{
				{uOwner, "Let's run a failover drill once this is written."},
			}},
	}
}
