from django.urls import path

from billing_project.portal.capabilities import CapabilitiesView

urlpatterns = [path("capabilities", CapabilitiesView.as_view(), name="capabilities")]
