/** ENGINES are the container engines u7s drives. */
export const ENGINES = ["docker", "podman", "nerdctl"] as const;
/** EngineName is one of ENGINES. */
export type EngineName = (typeof ENGINES)[number];
