import { Type } from 'typebox';
import { formatId, idPattern } from '../platform/ids.ts';
import type { Job } from './jobs.types.ts';

/** The 202 answer of every route that queues a job: the job's id and where to watch it. */
export const JobAccepted = Type.Object({
  jobId: Type.String({ pattern: idPattern('job') }),
  status: Type.String(),
  links: Type.Object({ job: Type.String(), events: Type.String() }),
});

export function renderAccepted(job: Job) {
  const jobId = formatId('job', job.id);
  return { jobId, status: job.status, links: { job: `/v1/jobs/${jobId}`, events: `/v1/jobs/${jobId}/events` } };
}
