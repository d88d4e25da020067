package dev.ntk.kernels.engine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.tools.FileObject;
import javax.tools.ForwardingJavaFileManager;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileManager;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.ToolProvider;

/**
 * Compiles one generated Java class in memory with the JDK's compiler ({@code javax.tools}) and
 * loads it, for {@link Fused}: the source never touches the disk, the class file lives in its own
 * class loader, and the class path includes this engine's jar, wherever it was loaded from.
 */
final class InMemoryJavac {
  /** The JDK's compiler, looked up once; null on a JRE. */
  static final JavaCompiler COMPILER = ToolProvider.getSystemJavaCompiler();

  private InMemoryJavac() {}

  /**
   * The class {@code name} compiled from {@code source}, loaded by a new class loader under
   * {@code parent}; an {@code IllegalStateException} with the compiler's messages if it does not compile.
   */
  static Class<?> load(String name, String source, ClassLoader parent) throws IOException, ClassNotFoundException {
    JavaCompiler compiler = COMPILER;
    Map<String, ByteArrayOutputStream> classes = new HashMap<>();
    JavaFileObject file = new SimpleJavaFileObject(URI.create("string:///" + name + ".java"),
        JavaFileObject.Kind.SOURCE) {
      @Override
      public CharSequence getCharContent(boolean ignoreEncodingErrors) {
        return source;
      }
    };
    java.io.StringWriter errors = new java.io.StringWriter();
    try (JavaFileManager files = new ForwardingJavaFileManager<>(
        compiler.getStandardFileManager(null, Locale.ROOT, null)) {
      @Override
      public JavaFileObject getJavaFileForOutput(Location location, String className, JavaFileObject.Kind kind,
          FileObject sibling) {
        return new SimpleJavaFileObject(URI.create("mem:///" + className + ".class"), kind) {
          @Override
          public OutputStream openOutputStream() {
            return classes.computeIfAbsent(className, c -> new ByteArrayOutputStream());
          }
        };
      }
    }) {
      List<String> options = new ArrayList<>(List.of("--add-modules", "jdk.incubator.vector",
          "-proc:none", "-g:none", "-nowarn", "-XDsuppressNotes", "-Xlint:none"));
      String engine = engineClassPath();
      if (engine != null) {
        // Templates may call this package's public VectorMath: compile against where it was loaded
        // from, which need not be on java.class.path (a Flink user-code class loader).
        options.addAll(List.of("-classpath", engine + java.io.File.pathSeparator
            + System.getProperty("java.class.path", "")));
      }
      boolean ok = compiler.getTask(errors, files, null, options, null, List.of(file)).call();
      if (!ok || !classes.containsKey(name)) {
        throw new IllegalStateException(errors.toString());
      }
      Map<String, byte[]> bytes = new HashMap<>();
      classes.forEach((k, v) -> bytes.put(k, v.toByteArray()));
      ClassLoader loader = new ClassLoader(parent) {
        @Override
        protected Class<?> findClass(String className) throws ClassNotFoundException {
          byte[] b = bytes.get(className);
          if (b == null) {
            throw new ClassNotFoundException(className);
          }
          return defineClass(className, b, 0, b.length);
        }
      };
      return loader.loadClass(name);
    }
  }

  /** The jar or directory this engine's classes were loaded from, or null if that is not a file. */
  static String engineClassPath() {
    try {
      java.security.CodeSource source = VectorMath.class.getProtectionDomain().getCodeSource();
      return source == null ? null : java.nio.file.Path.of(source.getLocation().toURI()).toString();
    } catch (Exception | LinkageError e) {
      return null;
    }
  }
}
