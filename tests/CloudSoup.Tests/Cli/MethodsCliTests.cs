using CloudSoup.Control.Methods;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;

namespace CloudSoup.Tests.Cli;

/// <summary>`cloudsoup methods`: every registered method is listed, one method's parameters are shown, unknown names exit 2.</summary>
public class MethodsCliTests(CliBuildFixture _) : IClassFixture<CliBuildFixture>
{
    private static (int Code, string Out, string Err) Methods(params string[] args) =>
        MergeCliTests.Run("dotnet", [CliBuildFixture.Dll, "methods", .. args], Path.GetTempPath());

    [Fact]
    public void Lists_every_registered_method()
    {
        var (code, stdout, err) = Methods();
        Assert.True(code == 0, err);
        foreach (var m in MethodCatalog.All) Assert.Contains(m.Name, stdout);
    }

    [Fact]
    public void Shows_one_methods_parameters_with_defaults_and_choices()
    {
        var (code, stdout, err) = Methods("agreement");
        Assert.True(code == 0, err);
        Assert.Contains("base_model: required", stdout);
        foreach (var p in PaperMethods.Agreement.Parameters) Assert.Contains(p.Name, stdout);
        Assert.Contains("order_free", stdout);
    }

    [Fact]
    public void An_unknown_method_exits_2_naming_the_choices()
    {
        var (code, _, err) = Methods("blend");
        Assert.Equal(2, code);
        Assert.StartsWith("error: merge_method: unknown merge method 'blend'", err.Trim());
    }
}
