/* The case list's case number: the id as plain text (React escapes it), linked to the case
 * page whose address the server built from the case's numeric id ("case_href"). Only an
 * address of the app's own case pages becomes a link: nothing in the data can make one. */
(function () {
  var funcs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  funcs.CaseLink = function (props) {
    var text = props.value == null ? "" : String(props.value);
    var href = props.data && props.data.case_href;
    if (typeof href !== "string" || !/^\/case\/\d+\?/.test(href)) {
      return React.createElement("span", null, text);
    }
    return React.createElement("a", {href: href, className: "case-link"}, text);
  };
})();
