package emulator

import "net/http"

// fullFidelityFeed is the A-IM value of the all-versions-and-deletes change
// feed (azure-sdk-for-js src/common/constants.ts, A_IMHeaderValues;
// .NET HttpConstants.A_IMHeaderValues.FullFidelityFeed).
const fullFidelityFeed = "Full-Fidelity Feed"

// readAllVersionsFeed answers A-IM: Full-Fidelity Feed. The service serves it
// only on a container with a changeFeedPolicy (or an account with
// continuous backup) and answers 400 otherwise
// (https://learn.microsoft.com/azure/cosmos-db/nosql/change-feed-modes).
// This emulator does not keep the versions and deletes the mode needs yet,
// so it answers every such request with that 400 instead of serving a
// latest-version feed under the wrong name.
func (e *Emulator) readAllVersionsFeed(_ http.ResponseWriter, _ *requestContext, c *container) error {
	return badRequest("The all versions and deletes change feed (A-IM: Full-Fidelity Feed) is not enabled on container %s: it needs a changeFeedPolicy with a retention duration, or continuous backup on the account.", c.link())
}
