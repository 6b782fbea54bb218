// Module declarations for the files under assets/, which Bun imports as text
// (`import x from "../assets/Dockerfile" with { type: "text" }`).
declare module "*/Dockerfile" {
  const text: string;
  export default text;
}
declare module "*.sh" {
  const text: string;
  export default text;
}
declare module "*.rules" {
  const text: string;
  export default text;
}
declare module "*.service" {
  const text: string;
  export default text;
}
