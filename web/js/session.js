// The signed-in account and the permission hints the client derives from it.
//
// These hints only decide which controls to show; the server checks every
// request again and its answer is what counts.

import { api, setCsrfToken } from './api.js';

export const session = {
  account: null,
  /** The caller's own member record (with officer roles), if any. */
  member: null,
};

/** Stores a login or `/api/auth/me` answer and loads the caller's member record. */
export async function startSession(info) {
  session.account = info.account;
  session.member = null;
  setCsrfToken(info.csrf_token);
  await refreshOwnMember();
}

/** Reloads the caller's member record, whose roles change on assignment. */
export async function refreshOwnMember() {
  const memberId = session.account && session.account.member_id;
  if (!memberId) {
    session.member = null;
    return;
  }
  try {
    session.member = await api.get(`/api/members/${memberId}`);
  } catch {
    session.member = null;
  }
}

export function endSession() {
  session.account = null;
  session.member = null;
  setCsrfToken(null);
}

export function hasSystemRole(role) {
  return Boolean(session.account && session.account.system_role === role);
}

/** Whether the caller is an officer of exactly this organization. */
function isOfficerOf(orgId) {
  return Boolean(session.member && session.member.roles.some((role) => role.org_id === orgId));
}

/**
 * Whether the caller may reveal the identity number of a member of the given
 * organization: its own officers and the security administrator.
 */
export function canRevealId(memberOrgId) {
  return hasSystemRole('security_admin') || isOfficerOf(memberOrgId);
}

/**
 * Whether the caller may assign officer roles in an organization: the
 * security administrator anywhere, officers where they may write (never on
 * their own record, which the role dialog checks separately).
 */
export function canAssignRoles(org) {
  if (hasSystemRole('security_admin')) return true;
  return Boolean(session.account && session.account.member_id && org.can_write);
}

/** The navigation entries this account sees, in order. */
export function navigationFor() {
  const role = session.account ? session.account.system_role : null;
  if (role === 'security_auditor') return ['audit'];
  if (role === 'system_admin') return ['meetings', 'approvals', 'notices', 'learning', 'org', 'accounts'];
  if (role === 'security_admin') return ['org', 'accounts'];
  return ['meetings', 'approvals', 'notices', 'learning', 'org'];
}

/** The page an account lands on after login. */
export function homePath() {
  const role = session.account ? session.account.system_role : null;
  if (role === 'security_auditor') return '/audit';
  return '/org';
}
