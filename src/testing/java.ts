/**
 * Finds the `java` executable: `$JAVA_HOME/bin/java`, else `java` on `PATH`.
 *
 * @module
 */

/**
 * Returns the `java` executable to run.
 *
 * @param explicit A path given by the caller; wins when set.
 * @returns The executable path or name.
 */
export function findJava(explicit?: string): string {
  if (explicit !== undefined) return explicit;
  let home: string | undefined;
  try {
    home = Deno.env.get("JAVA_HOME");
  } catch {
    // no --allow-env
  }
  return home ? `${home}/bin/java` : "java";
}
