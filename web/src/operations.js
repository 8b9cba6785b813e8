// Every GraphQL operation the app sends, written against the contract
// schema (shared/contract/schema.graphqls). Named operations: the server's
// logs and metrics show the names, and the error link spots Login by name.
import { gql } from '@apollo/client';

// ------------------------------------------------------------------ host

/** Public on tenant hosts; TENANT_REQUIRED on the admin host. */
export const HOST = gql`
  query Host {
    organization {
      slug
      name
    }
  }
`;

// ---------------------------------------------------------------- tenant

export const LOGIN = gql`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) {
      token
      user {
        id
        name
      }
    }
  }
`;

export const VIEWER_AND_PROJECTS = gql`
  query ViewerAndProjects {
    viewer {
      id
      name
      email
      role
    }
    projects(first: 50) {
      totalCount
      edges {
        node {
          id
          key
          name
        }
      }
    }
  }
`;

export const CREATE_PROJECT = gql`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) {
      id
      key
      name
    }
  }
`;

const ISSUE_CARD = gql`
  fragment IssueCard on Issue {
    id
    key
    number
    title
    status
    updatedAt
    assignee {
      id
      name
    }
    reporter {
      id
      name
    }
  }
`;

/** How many issues a board shows (newest first). */
export const BOARD_SIZE = 100;

export const BOARD = gql`
  query Board($projectKey: String!, $first: Int!) {
    project(key: $projectKey) {
      id
      key
      name
      issues(first: $first) {
        totalCount
        edges {
          node {
            ...IssueCard
          }
        }
      }
    }
  }
  ${ISSUE_CARD}
`;

export const ISSUE_CHANGED = gql`
  subscription IssueChanged($projectKey: String!) {
    issueChanged(projectKey: $projectKey) {
      ...IssueCard
      description
    }
  }
  ${ISSUE_CARD}
`;

export const CREATE_ISSUE = gql`
  mutation CreateIssue($input: CreateIssueInput!) {
    createIssue(input: $input) {
      ...IssueCard
      description
    }
  }
  ${ISSUE_CARD}
`;

export const MOVE_ISSUE = gql`
  mutation MoveIssue($key: String!, $status: IssueStatus!) {
    updateIssue(key: $key, input: { status: $status }) {
      id
      key
      status
      updatedAt
    }
  }
`;

export const ISSUE_DETAILS = gql`
  query IssueDetails($key: String!) {
    issue(key: $key) {
      ...IssueCard
      description
      createdAt
      comments(first: 100) {
        totalCount
        edges {
          node {
            id
            body
            createdAt
            author {
              id
              name
            }
          }
        }
      }
    }
  }
  ${ISSUE_CARD}
`;

export const ADD_COMMENT = gql`
  mutation AddComment($issueKey: String!, $body: String!) {
    addComment(issueKey: $issueKey, body: $body) {
      id
      body
      createdAt
      author {
        id
        name
      }
    }
  }
`;

// -------------------------------------------------------------- platform

const TENANT_ROW = gql`
  fragment TenantRow on Tenant {
    id
    slug
    name
    status
    host
    databaseServer
    movingTo
    step
    lastError
    deletedAt
    purgeAfter
    createdAt
    updatedAt
  }
`;

/** How many tenants the console lists. */
export const TENANTS_PAGE = 100;

/**
 * The console's list, with each tenant's usage (counted across replicas,
 * flushed every few seconds). Only this query asks for usage: the live
 * status updates and the mutations answer with TenantRow alone.
 */
export const TENANTS = gql`
  query Tenants($first: Int!) {
    tenants(first: $first) {
      totalCount
      edges {
        node {
          ...TenantRow
          usage {
            requestsLastHour
            requestsLastDay
            errorsLastDay
            p95LatencyMs
            databaseBytes
            users
            lastRequestAt
            requestsByHour
          }
        }
      }
    }
  }
  ${TENANT_ROW}
`;

/** How many steps of a tenant's history the console shows. */
export const HISTORY_LAST = 20;

/** A tenant's last steps, newest first (an addition to the contract). */
export const TENANT_HISTORY = gql`
  query TenantHistory($slug: String!, $last: Int!) {
    tenant(slug: $slug) {
      id
      history(last: $last) {
        step
        outcome
        durationMs
        at
        error
      }
    }
  }
`;

export const TENANT_STATUS_CHANGED = gql`
  subscription TenantStatusChanged($slug: String!) {
    tenantStatusChanged(slug: $slug) {
      ...TenantRow
    }
  }
  ${TENANT_ROW}
`;

export const CREATE_TENANT = gql`
  mutation CreateTenant($input: CreateTenantInput!) {
    createTenant(input: $input) {
      tenant {
        ...TenantRow
      }
    }
  }
  ${TENANT_ROW}
`;

export const SUSPEND_TENANT = gql`
  mutation SuspendTenant($slug: String!) {
    suspendTenant(slug: $slug) {
      ...TenantRow
    }
  }
  ${TENANT_ROW}
`;

export const RESUME_TENANT = gql`
  mutation ResumeTenant($slug: String!) {
    resumeTenant(slug: $slug) {
      ...TenantRow
    }
  }
  ${TENANT_ROW}
`;

export const RETRY_TENANT = gql`
  mutation RetryTenant($slug: String!) {
    retryTenant(slug: $slug) {
      ...TenantRow
    }
  }
  ${TENANT_ROW}
`;

/** DELETED (restorable until purgeAfter), or with purge gone for good. */
export const DELETE_TENANT = gql`
  mutation DeleteTenant($slug: String!, $purge: Boolean) {
    deleteTenant(slug: $slug, purge: $purge) {
      tenant {
        ...TenantRow
      }
    }
  }
  ${TENANT_ROW}
`;

export const RESTORE_TENANT = gql`
  mutation RestoreTenant($slug: String!) {
    restoreTenant(slug: $slug) {
      ...TenantRow
    }
  }
  ${TENANT_ROW}
`;

// ------------------------------------------------------ database servers

/** The fleet: where tenant databases live and which servers take more. */
export const DATABASE_SERVERS = gql`
  query DatabaseServers {
    databaseServers {
      name
      host
      status
      capacity
      tenantCount
      lastError
    }
  }
`;

/** MOVING at once, then READY on toServer (or READY where it was, with lastError). */
export const MOVE_TENANT = gql`
  mutation MoveTenant($slug: String!, $toServer: String!) {
    moveTenant(slug: $slug, toServer: $toServer) {
      ...TenantRow
    }
  }
  ${TENANT_ROW}
`;

/** A moving tenant's progress (status, step), polled while MOVING. */
export const TENANT_MOVE = gql`
  query TenantMove($slug: String!) {
    tenant(slug: $slug) {
      ...TenantRow
    }
  }
  ${TENANT_ROW}
`;
