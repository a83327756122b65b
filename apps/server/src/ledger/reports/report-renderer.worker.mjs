// Entry of a report-rendering thread (report-renderer.ts). Worker threads do not inherit the
// main thread's TypeScript loader, so this file registers tsx before it loads the renderers.
import { register } from 'tsx/esm/api';

register();
const { renderReportFile } = await import('./report-renderer.thread.ts');

export default renderReportFile;
