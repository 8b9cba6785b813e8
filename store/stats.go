package store

import "context"

// CountUsers returns how many users the tenant has (for the platform's
// usage figures, sampled, never per request).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	const q = `SELECT count(*) FROM users`
	var n int
	if err := s.db.GetContext(ctx, &n, q); err != nil {
		return 0, dbError("count users", err)
	}
	return n, nil
}
