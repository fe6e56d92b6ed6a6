// Who is logged in, the project being looked at and what the user's role there allows. Kept
// apart from app.js so the resource descriptions can name permissions when they load.

export const session = { user: null, projects: [], project: null, permissions: 0 };

/** Semaphore's permission bits, as `GET /api/project/{id}/role` reports them. */
export const PERM = { run: 1, updateProject: 2, resources: 4, users: 8 };

/** Whether the user may do what `bit` stands for in the current project (admins may). */
export function can(bit) {
  return !!(session.user && session.user.admin) || (session.permissions & bit) !== 0;
}
