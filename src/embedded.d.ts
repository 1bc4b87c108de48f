// `import x from "./file" with { type: "file" }` gives the embedded file's path (src/standalone.ts)
declare module "*.so" {
  const path: string;
  export default path;
}
declare module "*.safetensors" {
  const path: string;
  export default path;
}
declare module "*.txt" {
  const path: string;
  export default path;
}
