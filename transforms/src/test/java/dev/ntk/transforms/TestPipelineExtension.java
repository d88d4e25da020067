package dev.ntk.transforms;

import java.lang.reflect.Method;
import org.apache.beam.sdk.testing.TestPipeline;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.InvocationInterceptor;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.junit.jupiter.api.extension.ReflectiveInvocationContext;
import org.junit.runner.Description;
import org.junit.runners.model.Statement;

/**
 * Beam's {@link TestPipeline} in JUnit 5 tests: a test method that declares a {@code TestPipeline}
 * parameter gets a fresh one, and the method runs inside the pipeline's own JUnit 4 rule, so that
 * everything the rule checks is checked as under JUnit 4 (the pipeline must be run, and no
 * transform, {@code PAssert} included, may be left unapplied). Beam 2.62 has no JUnit 5 extension;
 * this adapts the rule rather than re-implementing it.
 *
 * <pre>{@code
 * @ExtendWith(TestPipelineExtension.class)
 * class MyTest {
 *   @Test
 *   void works(TestPipeline p) {
 *     PAssert.that(p.apply(Create.of(1, 2))).containsInAnyOrder(1, 2);
 *     p.run();
 *   }
 * }
 * }</pre>
 */
public final class TestPipelineExtension implements ParameterResolver, InvocationInterceptor {
  private static final ExtensionContext.Namespace NAMESPACE =
      ExtensionContext.Namespace.create(TestPipelineExtension.class);

  @Override
  public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
    return parameter.getParameter().getType() == TestPipeline.class;
  }

  @Override
  public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
    return context.getStore(NAMESPACE).getOrComputeIfAbsent("pipeline",
        key -> TestPipeline.create().enableAbandonedNodeEnforcement(true), TestPipeline.class);
  }

  @Override
  public void interceptTestMethod(Invocation<Void> invocation,
      ReflectiveInvocationContext<Method> invocationContext, ExtensionContext context)
      throws Throwable {
    TestPipeline pipeline = context.getStore(NAMESPACE).get("pipeline", TestPipeline.class);
    if (pipeline == null) {
      invocation.proceed();
      return;
    }
    Statement body = new Statement() {
      @Override
      public void evaluate() throws Throwable {
        invocation.proceed();
      }
    };
    pipeline.apply(body, Description.createTestDescription(context.getRequiredTestClass(),
        context.getRequiredTestMethod().getName())).evaluate();
  }
}
